"""The storefront's buy form. Field rules live in ``apps.orders.placement.request`` (shared with the API):
this form only gathers the fields, turns them into the API's shape and maps errors back."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from django import forms
from django.core import signing
from django.utils.translation import gettext_lazy as _

from apps.core.phone import normalize_phone

from .errors import InvalidOrder
from .placement.request import MAX_QUANTITY, NO_CLIENT, ClientSignals, OrderRequest, parse_order_request

FORM_TOKEN_SALT = "livecommerce.storefront.form"
FORM_TOKEN_MAX_AGE = 24 * 3600

# validation error paths -> form fields
_FIELD_OF = {
    "listing": "listing",
    "quantity": "quantity",
    "buyer.name": "name",
    "buyer.phone": "phone",
    "buyer.external_id": "phone",
    "shipping_address.name": "name",
    "shipping_address.phone": "phone",
    "shipping_address.province": "province",
    "shipping_address.city": "city",
    "shipping_address.district": "district",
    "shipping_address.detail": "detail",
}


def new_form_token() -> str:
    """A one-form token: its random part becomes the order's Idempotency-Key, so a double click
    or a resubmitted form lands on the same order."""
    return signing.TimestampSigner(salt=FORM_TOKEN_SALT).sign(secrets.token_urlsafe(18))


def idempotency_key_from(token: str) -> str | None:
    try:
        raw = signing.TimestampSigner(salt=FORM_TOKEN_SALT).unsign(token, max_age=FORM_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return f"sf:{raw}"


def buyer_id_for(phone: str) -> str:
    """Storefront buyers have no account: the phone number is who they are (per-buyer limits
    follow the phone, not a cookie a scalper can clear). The phone in its one normal form
    (``apps.core.phone``), so +86 139-1111-0000, 0086 13911110000 and 013911110000 are one buyer."""
    normal = normalize_phone(phone.strip())
    return f"phone:{normal}" if normal else ""


class BuyForm(forms.Form):
    listing = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY, initial=1)
    name = forms.CharField(label=_("Name"), max_length=64)
    phone = forms.CharField(label=_("Phone"), max_length=32)
    province = forms.CharField(label=_("Province"), max_length=64)
    city = forms.CharField(label=_("City"), max_length=64)
    district = forms.CharField(label=_("District"), max_length=64, required=False)
    detail = forms.CharField(label=_("Street address"), max_length=300)
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def order_request(self, *, client: ClientSignals = NO_CLIENT) -> OrderRequest | None:
        """The validated request, or None with the errors added to the form. ``client`` is the
        buyer's device as the storefront saw it (already normalised: not the buyer's input, so it
        is carried over, never validated against the buyer)."""
        if not self.is_valid():
            return None
        d: dict[str, Any] = self.cleaned_data
        data = {
            "listing": d["listing"],
            "quantity": d["quantity"],
            "buyer": {"external_id": buyer_id_for(d["phone"]), "name": d["name"], "phone": d["phone"]},
            "shipping_address": {
                "name": d["name"],
                "phone": d["phone"],
                "province": d["province"],
                "city": d["city"],
                "district": d["district"],
                "detail": d["detail"],
            },
        }
        try:
            return replace(parse_order_request(data), client=client)
        except InvalidOrder as exc:
            fields = exc.extra.get("fields") or {}
            done: set[str | None] = set()
            for path, message in fields.items():
                field = _FIELD_OF.get(path)
                field = field if field in self.fields else None
                if field in done:
                    continue
                done.add(field)
                if field == "phone":
                    message = _("Enter a valid phone number.")
                self.add_error(field, message)
            if not fields:
                self.add_error(None, exc.message)
            return None
