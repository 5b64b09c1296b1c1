"""The stock sync body (``POST /api/v1/stock/sync``): its shape is checked whole before anything is
applied; a body that fails is a 400 ``invalid`` naming every bad field (items by index:
``extra.fields.items["3"].on_hand``) and changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.catalog.models import MAX_UNITS
from apps.inventory.sync import DEFAULT_REASON, MAX_ITEMS, STATUSES, SyncItem, SyncRequest

SYNC_ID_PATTERN = r"^[\x21-\x7e]{1,100}$"  # as an order's Idempotency-Key: 1-100 printable ASCII


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: ``"5"``, ``5.0`` and ``true`` are refused (an ERP that sends
    them has a bug worth hearing about)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictCharField(serializers.CharField):
    """A JSON string, nothing else (DRF would take ``42`` as ``"42"``: a code or a sync id that
    arrives as a number is a client bug, and ``1.0`` and ``1`` would be one id)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class _NoUnknownFields(serializers.Serializer):
    """A misspelt field (``"onhand"``) is refused, never ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: [_("Unknown field.")] for k in unknown})
        return super().to_internal_value(data)


class StockSyncItemSerializer(_NoUnknownFields):
    sku = StrictCharField(max_length=64, trim_whitespace=False, help_text="The SKU's code (this merchant's).")
    on_hand = StrictIntegerField(
        min_value=0, max_value=MAX_UNITS, required=False, help_text="Absolute count on hand (a stocktake)."
    )
    delta = StrictIntegerField(
        min_value=-MAX_UNITS,
        max_value=MAX_UNITS,
        required=False,
        help_text="Change in units (goods in or out); applied to the count as it is when locked.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("on_hand" in attrs) == ("delta" in attrs):
            raise serializers.ValidationError(_("Give exactly one of on_hand and delta."), code="invalid")
        return attrs


class StockSyncRequestSerializer(_NoUnknownFields):
    sync_id = StrictCharField(
        max_length=100,
        trim_whitespace=False,
        validators=[RegexValidator(SYNC_ID_PATTERN, _("1 to 100 printable ASCII characters, no spaces."))],
        help_text="Your id for this sync (1-100 printable ASCII). A retry with the same id and body "
        "answers the first response and changes nothing; another body is a 422.",
    )
    mode = serializers.ChoiceField(
        choices=["absolute", "delta"],
        required=False,
        help_text="Optional guard: every item must then be of this kind (on_hand for absolute, delta for "
        "delta). Without it each item says what it is.",
    )
    reason = StrictCharField(
        max_length=200, required=False, default=DEFAULT_REASON, help_text="Written on every stock movement."
    )
    items = serializers.ListField(
        child=StockSyncItemSerializer(), min_length=1, max_length=MAX_ITEMS, help_text=f"1 to {MAX_ITEMS} SKUs."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        first: dict[str, int] = {}
        mode = attrs.get("mode")
        for index, item in enumerate(attrs["items"]):
            if item["sku"] in first:
                errors[str(index)] = {"sku": [_("Same SKU as item %(index)d.") % {"index": first[item["sku"]]}]}
            first.setdefault(item["sku"], index)
            if mode == "absolute" and "on_hand" not in item:
                errors.setdefault(str(index), {})["on_hand"] = [_("mode is absolute: give on_hand.")]
            elif mode == "delta" and "delta" not in item:
                errors.setdefault(str(index), {})["delta"] = [_("mode is delta: give delta.")]
        if errors:
            raise serializers.ValidationError({"items": errors})
        return attrs

    def to_request(self) -> SyncRequest:
        d = self.validated_data
        return SyncRequest(
            sync_id=d["sync_id"],
            reason=d["reason"],
            items=tuple(SyncItem(sku=i["sku"], on_hand=i.get("on_hand"), delta=i.get("delta")) for i in d["items"]),
        )


class StockSyncResultSerializer(serializers.Serializer):
    sku = serializers.CharField()
    status = serializers.ChoiceField(choices=list(STATUSES))
    on_hand = serializers.IntegerField(allow_null=True, help_text="On hand now (null for an unknown SKU).")
    reserved = serializers.IntegerField(allow_null=True, help_text="Units live orders hold.")
    available = serializers.IntegerField(allow_null=True, help_text="on_hand - reserved.")
    previous_on_hand = serializers.IntegerField(allow_null=True, help_text="On hand when the sync locked it.")
    requested_on_hand = serializers.IntegerField(allow_null=True, help_text="What the item asked for.")
    code = serializers.CharField(
        allow_null=True, help_text="Why not applied: insufficient_stock, unknown_sku or stock_limit."
    )
    message = serializers.CharField(allow_null=True)


class StockSyncSummarySerializer(serializers.Serializer):
    applied = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    conflict = serializers.IntegerField()
    error = serializers.IntegerField()


class StockSyncResponseSerializer(serializers.Serializer):
    sync_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    summary = StockSyncSummarySerializer()
    results = StockSyncResultSerializer(many=True, help_text="One per item, in the request's order.")
