from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.fulfilment.carriers.base import EXPRESS
from apps.fulfilment.models import EXPRESS_CHOICES, CarrierAccount, CarrierChoice, RefundRequest, ShipBatch
from apps.fulfilment.platform_refunds import platform_summary
from apps.fulfilment.selectors import account_push_url
from apps.fulfilment.services import SENDER_FIELDS

ID_MAX = 2**63 - 1  # the largest id a database column holds (SQLite would overflow above it: a 500)

SECRET_HELP = "Write-only: never returned (reads say has_{name}). Stored encrypted."


class SenderSerializer(serializers.Serializer):
    """The ship-from party printed on the account's waybills."""

    name = serializers.CharField(max_length=64)
    mobile = serializers.CharField(max_length=32, help_text="A mobile or landline number.")
    province = serializers.CharField(max_length=32)
    city = serializers.CharField(max_length=32)
    district = serializers.CharField(max_length=32)
    detail = serializers.CharField(max_length=200, help_text="The street address below the district.")


class SenderPatchSerializer(SenderSerializer):
    """Only the parts sent change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class CarrierAccountSerializer(serializers.ModelSerializer):
    """A carrier account as read: never its secrets, only whether each is set."""

    has_app_key = serializers.SerializerMethodField()
    has_app_secret = serializers.SerializerMethodField()
    has_push_salt = serializers.SerializerMethodField()
    has_partner_key = serializers.SerializerMethodField()
    has_month_code = serializers.SerializerMethodField()
    sender = serializers.SerializerMethodField()
    api_base_url = serializers.CharField(
        read_only=True, help_text="The gateway set for this account (a sandbox, a simulator), or empty: production."
    )
    push_url = serializers.SerializerMethodField(
        help_text="The absolute URL tracking pushes of this account go to (Kdniao: set it in its console; "
        "Kuaidi100: each subscription names it)."
    )

    class Meta:
        model = CarrierAccount
        fields = [
            "id",
            "carrier",
            "name",
            "app_id",
            "has_app_key",
            "has_app_secret",
            "has_push_salt",
            "partner_id",
            "has_partner_key",
            "has_month_code",
            "express",
            "sender",
            "api_base_url",
            "push_url",
            "enabled",
            "is_default",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_app_key(self, obj: CarrierAccount) -> bool:
        return bool(obj.app_key)

    def get_has_app_secret(self, obj: CarrierAccount) -> bool:
        return bool(obj.app_secret)

    def get_has_push_salt(self, obj: CarrierAccount) -> bool:
        return bool(obj.push_salt)

    def get_has_partner_key(self, obj: CarrierAccount) -> bool:
        return bool(obj.partner_key)

    def get_has_month_code(self, obj: CarrierAccount) -> bool:
        return bool(obj.month_code)

    def get_push_url(self, obj: CarrierAccount) -> str:
        return account_push_url(obj, self.context.get("request"))

    @extend_schema_field(SenderSerializer)
    def get_sender(self, obj: CarrierAccount) -> dict[str, str]:
        return {part: getattr(obj, f"sender_{part}") for part in SENDER_FIELDS}


def _secret(name: str, *, required: bool = False, max_length: int = 512) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        required=required,
        allow_blank=not required,
        max_length=max_length,
        trim_whitespace=True,
        style={"input_type": "password"},
        help_text=SECRET_HELP.format(name=name),
    )


EXPRESS_HELP = "The express company waybills are drawn from by default (our code): " + ", ".join(
    f"{code} {names['name']}" for code, names in EXPRESS.items()
)


class CarrierAccountInputSerializer(serializers.Serializer):
    carrier = serializers.ChoiceField(choices=CarrierChoice.choices)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    app_id = serializers.CharField(max_length=64, help_text="Kuaidi100: the customer id. Kdniao: the EBusinessID.")
    app_key = _secret("app_key", required=True)
    app_secret = _secret("app_secret")
    push_salt = _secret("push_salt", max_length=128)
    partner_id = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    partner_key = _secret("partner_key")
    month_code = _secret("month_code", max_length=128)
    express = serializers.ChoiceField(choices=EXPRESS_CHOICES, help_text=EXPRESS_HELP)
    sender = SenderSerializer()
    api_base_url = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="http(s) URL; empty = the carrier's production gateway (a sandbox or simulator is set here).",
    )
    enabled = serializers.BooleanField(required=False, default=True)
    is_default = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Make it the merchant's default (the previous default stops being one).",
    )

    def validate(self, attrs: dict) -> dict:
        for name in ("app_secret", "push_salt", "partner_key", "month_code"):
            attrs.setdefault(name, "")
        return attrs


class CarrierAccountPatchSerializer(serializers.Serializer):
    """Only the fields sent change; a secret left out is kept."""

    carrier = serializers.ChoiceField(choices=CarrierChoice.choices, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    app_id = serializers.CharField(max_length=64, required=False)
    app_key = _secret("app_key")
    app_secret = _secret("app_secret")
    push_salt = _secret("push_salt", max_length=128)
    partner_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    partner_key = _secret("partner_key")
    month_code = _secret("month_code", max_length=128)
    express = serializers.ChoiceField(choices=EXPRESS_CHOICES, required=False, help_text=EXPRESS_HELP)
    sender = SenderPatchSerializer(required=False)
    api_base_url = serializers.CharField(max_length=300, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, help_text="Disabling the default account leaves no default.")
    is_default = serializers.BooleanField(required=False)


class ShipBatchInputSerializer(serializers.Serializer):
    """Either ``orders`` (order numbers) or ``session`` with ``status`` (``confirmed``)."""

    orders = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, allow_empty=False, max_length=20_000
    )
    session = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)
    status = serializers.ChoiceField(choices=["confirmed"], required=False, default="confirmed")
    account = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=ID_MAX,
        help_text="A carrier account id (default: the merchant's default account).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("orders" in attrs) == ("session" in attrs):
            raise serializers.ValidationError("give either orders or session")
        return attrs


class ShipBatchItemSerializer(serializers.Serializer):
    order = serializers.CharField(source="order.public_id")
    result = serializers.CharField()
    parcel = serializers.CharField(source="parcel.code", default=None, allow_null=True)
    waybill_no = serializers.CharField(source="parcel.waybill_no", default=None, allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ShipBatchSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    progress = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = ShipBatch
        fields = [
            "id",
            "status",
            "account",
            "selection",
            "total",
            "shipped",
            "failed",
            "progress",
            "attempts",
            "error",
            "created_by",
            "created_at",
            "finished_at",
            "downloads",
            "items",
        ]
        read_only_fields = fields

    def get_progress(self, obj: ShipBatch) -> float:
        """The share of the batch's orders with an outcome (shipped, failed or skipped), 0..1."""
        open_items = self.context.get("open_items", {}).get(obj.pk, 0)
        return round((obj.total - open_items) / obj.total, 4) if obj.total else 1.0

    def get_items(self, obj: ShipBatch) -> list[dict[str, Any]]:
        items = self.context.get("items")
        if items is None:
            return []
        return list(ShipBatchItemSerializer(items, many=True).data)

    def get_downloads(self, obj: ShipBatch) -> dict[str, str | None]:
        request = self.context.get("request")
        base = f"/api/v1/shipments/batches/{obj.pk}"

        def url(field: str, suffix: str) -> str | None:
            if not getattr(obj, field):
                return None
            return request.build_absolute_uri(f"{base}/{suffix}") if request else f"{base}/{suffix}"

        return {
            "labels": url("labels_file", "labels"),
            "picking_xlsx": url("picking_xlsx", "picking.xlsx"),
            "picking_csv": url("picking_csv", "picking.csv"),
        }


# --- after-sales ---------------------------------------------------------------------------------


class RefundLineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64, help_text="The SKU code of a line of the order.")
    quantity = serializers.IntegerField(min_value=1, max_value=100000)


class RefundInputSerializer(serializers.Serializer):
    order = serializers.CharField(max_length=32, help_text="The order's id.")
    kind = serializers.ChoiceField(
        choices=["refund", "return"],
        help_text="`refund`: money back alone (仅退款); `return`: the goods come back, then the money (退货退款; "
        "only once the order has shipped).",
    )
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        coerce_to_string=True,
        help_text="Yuan. Omitted: the whole amount still refundable (or, for a return naming lines, those "
        "units' price).",
    )
    lines = serializers.ListField(
        child=RefundLineInputSerializer(),
        required=False,
        max_length=200,
        help_text="A return's units (omitted: every unit not yet returned).",
    )
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RefundDecisionSerializer(serializers.Serializer):
    note = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default="", help_text="Required to reject: the buyer sees it."
    )


class RefundLineSerializer(serializers.Serializer):
    sku = serializers.CharField(source="order_line.sku.code")
    quantity = serializers.IntegerField()


class PlatformRefundSerializer(serializers.Serializer):
    """A platform's request: asked, decided and paid on the platform; mirrored here."""

    name = serializers.CharField(help_text="douyin, kuaishou or taobao")
    refund_id = serializers.CharField(help_text="The platform's id of the request.")
    status = serializers.CharField(help_text="The platform's own word for its last step.")
    step = serializers.CharField(
        help_text="requested, modified, agreed, return_agreed, goods_returned, refused, succeeded or closed"
    )
    at = serializers.DateTimeField(allow_null=True)


class RefundSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id")
    order = serializers.CharField(source="order.public_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    lines = RefundLineSerializer(many=True)
    platform = serializers.SerializerMethodField()

    @extend_schema_field(PlatformRefundSerializer(allow_null=True))
    def get_platform(self, obj: RefundRequest) -> dict[str, Any] | None:
        return platform_summary(obj)

    class Meta:
        model = RefundRequest
        fields = [
            "id",
            "order",
            "kind",
            "source",
            "status",
            "amount",
            "reason",
            "lines",
            "decision_note",
            "provider_refund_id",
            "last_error",
            "requested_at",
            "decided_at",
            "received_at",
            "refunded_at",
            "platform",
        ]
        read_only_fields = fields
