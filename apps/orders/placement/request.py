"""Order request validation in one place, shared by the DRF view, the storefront form and any
lean fast path: plain data in, an ``OrderRequest`` or an ``InvalidOrder`` (with per-field errors) out.

``parse_order_body`` is the one reading of the raw body (size limit, JSON) for both HTTP entry
points, so the DRF view and the ASGI fast path refuse bad bytes with the same status and body."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from apps.core.phone import compact_phone, is_ascii_digits, normalize_phone
from apps.orders.errors import InvalidOrder

MAX_QUANTITY = 1000
MAX_BODY = 64 * 1024  # bytes of a POST /api/v1/orders body
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
        # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "２".
        if isinstance(value, str) and is_ascii_digits(value) and len(value) < 19:
            value = int(value)
        else:
            errors[key] = "A valid integer is required." if key in obj else "This field is required."
            return 0
    if not lo <= value <= hi:
        errors[key] = f"Must be between {lo} and {hi}."
    return value


def _phone(obj: dict, errors: dict, *, path: str, required: bool = False) -> str:
    """A phone number in its one stored form (``apps.core.phone.normalize_phone``): the same
    mainland mobile written as +86 139-1111-0000 or 013911110000 is stored as 13911110000."""
    value = _text(obj, "phone", errors, required=required, max_len=64 if path == "shipping_address." else 32, path=path)
    if not value or f"{path}phone" in errors:
        return value
    if not _PHONE.match(compact_phone(value)):
        errors[f"{path}phone"] = "Not a phone number."
        return value
    return normalize_phone(value)


def parse_order_body(body: bytes) -> Any:
    """The JSON value of a raw ``POST /api/v1/orders`` body. Raises ``InvalidOrder`` 413
    ``payload_too_large`` over ``MAX_BODY`` and 400 ``malformed_request`` for anything that is
    not JSON (including nesting too deep for the decoder, and NaN/Infinity)."""
    if len(body) > MAX_BODY:
        raise payload_too_large()
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidOrder("JSON parse error.", code="malformed_request") from None


def payload_too_large() -> InvalidOrder:
    return InvalidOrder(
        f"The body is larger than {MAX_BODY // 1024} KiB.",
        code="payload_too_large",
        http_status=413,
        extra={"max_bytes": MAX_BODY},
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


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
    phone = _phone(buyer, errors, path="buyer.")
    address_in = data.get("shipping_address")
    address: dict[str, str] = {}
    if not isinstance(address_in, dict):
        errors["shipping_address"] = "An object {name, phone, province, city, district, detail} is required."
    else:
        for f in ADDRESS_FIELDS:
            if f == "phone":
                address[f] = _phone(address_in, errors, path="shipping_address.", required=True)
                continue
            address[f] = _text(
                address_in,
                f,
                errors,
                required=f != "district",
                max_len=300 if f == "detail" else 64,
                path="shipping_address.",
            )
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
