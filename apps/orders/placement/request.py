"""Order request validation in one place, shared by the DRF view, the storefront form and any
lean fast path: plain data in, an ``OrderRequest`` or an ``InvalidOrder`` (with per-field errors) out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from apps.orders.errors import InvalidOrder

MAX_QUANTITY = 1000
ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "detail")
PHONE_RE = r"^\+?[0-9][0-9 \-]{4,30}$"
_PHONE = re.compile(PHONE_RE)
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")


@dataclass(frozen=True)
class OrderRequest:
    listing_id: int
    quantity: int
    buyer_external_id: str
    buyer_name: str
    buyer_phone: str
    address: dict[str, str]

    def fingerprint(self) -> str:
        fields = {
            "listing_id": self.listing_id,
            "quantity": self.quantity,
            "buyer_external_id": self.buyer_external_id,
            "buyer_name": self.buyer_name,
            "buyer_phone": self.buyer_phone,
            "address": self.address,
        }  # = dataclasses.asdict(self), without its deep copy (a test holds the two equal)
        return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _text(obj: dict, key: str, errors: dict, *, required: bool, max_len: int, path: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            errors[f"{path}{key}"] = "This field is required."
        return ""
    if not isinstance(value, str):
        errors[f"{path}{key}"] = "Must be a string."
        return ""
    value = value.strip()
    if required and not value:
        errors[f"{path}{key}"] = "This field may not be blank."
    if len(value) > max_len:
        errors[f"{path}{key}"] = f"At most {max_len} characters."
    if "\x00" in value:
        errors[f"{path}{key}"] = "Null characters are not allowed."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") that JSON let through
        errors[f"{path}{key}"] = "Not valid text (lone surrogate)."
        return ""
    return value


def _int(obj: dict, key: str, errors: dict, *, lo: int, hi: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isdigit() and len(value) < 19:
            value = int(value)
        else:
            errors[key] = "A valid integer is required." if key in obj else "This field is required."
            return 0
    if not lo <= value <= hi:
        errors[key] = f"Must be between {lo} and {hi}."
    return value


def parse_order_request(data: Any) -> OrderRequest:
    if not isinstance(data, dict):
        raise InvalidOrder("the body must be a JSON object", extra={"fields": {}})
    errors: dict[str, str] = {}
    listing_id = _int(data, "listing", errors, lo=1, hi=2**63 - 1)
    quantity = _int(data, "quantity", errors, lo=1, hi=MAX_QUANTITY)
    buyer = data.get("buyer")
    if not isinstance(buyer, dict):
        errors["buyer"] = "An object {external_id, name, phone} is required."
        buyer = {}
    ext = _text(buyer, "external_id", errors, required=True, max_len=100, path="buyer.")
    name = _text(buyer, "name", errors, required=False, max_len=100, path="buyer.")
    phone = _text(buyer, "phone", errors, required=False, max_len=32, path="buyer.")
    if phone and not _PHONE.match(phone):
        errors["buyer.phone"] = "Not a phone number."
    address_in = data.get("shipping_address")
    address: dict[str, str] = {}
    if not isinstance(address_in, dict):
        errors["shipping_address"] = "An object {name, phone, province, city, district, detail} is required."
    else:
        for f in ADDRESS_FIELDS:
            address[f] = _text(
                address_in,
                f,
                errors,
                required=f != "district",
                max_len=300 if f == "detail" else 64,
                path="shipping_address.",
            )
        if address.get("phone") and not _PHONE.match(address["phone"]):
            errors["shipping_address.phone"] = "Not a phone number."
    if errors:
        first = next(iter(errors.items()))
        raise InvalidOrder(f"{first[0]}: {first[1]}", extra={"fields": errors})
    return OrderRequest(
        listing_id=listing_id,
        quantity=quantity,
        buyer_external_id=ext,
        buyer_name=name,
        buyer_phone=phone,
        address=address,
    )


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _KEY.match(value):
        raise InvalidOrder("Idempotency-Key must be 1-100 printable ASCII characters", code="invalid_idempotency_key")
    return value
