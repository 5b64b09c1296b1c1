"""The one input definition of an order, shared by the DRF view, the ASGI fast path and the
storefront form: ``ORDER_INPUT`` declares the fields and their limits once; ``parse_order_request``
validates by it (plain data in, an ``OrderRequest`` or an ``InvalidOrder`` with per-field errors
out) and ``order_input_schema`` draws the OpenAPI schema from it, so what the schema shows is
what is validated (``tests/orders/test_order_entry_parity.py`` holds the two together).

``parse_order_body`` is the one reading of the raw body (size limit, JSON) for both HTTP entry
points, so the DRF view and the ASGI fast path refuse bad bytes with the same status and body."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime

from apps.core.client_ip import normal_ip
from apps.core.datetimes import RANGE_MESSAGE, in_range
from apps.core.phone import compact_phone, is_ascii_digits, normalize_phone
from apps.orders.errors import InvalidOrder

MAX_QUANTITY = 1000
MAX_BODY = 64 * 1024  # bytes of a POST /api/v1/orders body
PHONE_RE = r"^\+?[0-9][0-9 \-]{4,30}$"
_PHONE = re.compile(PHONE_RE)
_STORED_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")
DEVICE_ID_RE = r"^[\x21-\x7e]{1,128}$"  # printable ASCII, no spaces
_DEVICE_ID = re.compile(DEVICE_ID_RE)
MAX_USER_AGENT = 512
CLOCK_SKEW = timedelta(minutes=5)  # a registration time this far ahead of our clock is still taken


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int
    description: str
    example: int


@dataclass(frozen=True)
class Text:
    max_len: int
    description: str
    example: str
    required: bool = True
    phone: bool = False
    kind: str = "text"  # "text" | "ascii" (printable ASCII, DEVICE_ID_RE) | "printable" (no control characters)


@dataclass(frozen=True)
class Ip:
    """An IPv4 or IPv6 address, kept in its normal form (``ipaddress``; an IPv4-mapped IPv6
    address is kept as the IPv4 address)."""

    description: str
    example: str
    required: bool = False


@dataclass(frozen=True)
class DateTime:
    """An RFC 3339 date-time with its UTC offset, years 2000-2099 (``apps.core.datetimes``), not
    later than now + ``CLOCK_SKEW``."""

    description: str
    example: str
    required: bool = False


@dataclass(frozen=True)
class Obj:
    fields: dict[str, Text | Ip | DateTime]
    description: str
    required: bool = True
    closed: bool = False  # unknown keys are refused (and ``null`` means "not given")


ORDER_INPUT: dict[str, Int | Obj] = {
    "listing": Int(1, 2**63 - 1, "The listing (a SKU on air) to buy from.", 1),
    "quantity": Int(1, MAX_QUANTITY, "Units; the listing's per-buyer limit applies.", 1),
    "buyer": Obj(
        {
            "external_id": Text(
                100, "The buyer's id on the tool or platform (the per-buyer limit counts by it).", "douyin-9001"
            ),
            "name": Text(100, "Display name.", "王小明", required=False),
            "phone": Text(
                32,
                "Mainland mobiles are stored as 11 digits however written.",
                "13800001001",
                required=False,
                phone=True,
            ),
            "registered_at": DateTime(
                "When the buyer's account was created on the tool or platform, where the tool knows it "
                "(RFC 3339 with offset). A risk signal; not part of the request's identity.",
                "2024-03-02T10:15:00+08:00",
            ),
        },
        "Who buys.",
    ),
    "shipping_address": Obj(
        {
            "name": Text(64, "Recipient.", "王小明"),
            "phone": Text(64, "Recipient's phone.", "13800001001", phone=True),
            "province": Text(64, "Province.", "浙江省"),
            "city": Text(64, "City.", "杭州市"),
            "district": Text(64, "District.", "西湖区", required=False),
            "detail": Text(300, "Street, building, room.", "文三路 100 号"),
        },
        "Where the parcel goes.",
    ),
    "client": Obj(
        {
            "ip": Ip("The buyer's IP address (IPv4 or IPv6).", "112.10.36.21"),
            "device_id": Text(
                128,
                "The buyer's device id on the tool (1-128 printable ASCII).",
                "d-7f3a9c21e4",
                required=False,
                kind="ascii",
            ),
            "user_agent": Text(
                MAX_USER_AGENT,
                "The buyer's app or browser user agent.",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) aweme/29.1.0",
                required=False,
                kind="printable",
            ),
        },
        "The buyer's device as the tool saw it (a tool relaying buyers: not the tool's own IP or user "
        "agent). Risk signals only: an Idempotency-Key replay with another client block is the same order.",
        required=False,
        closed=True,
    ),
}
"""The order body: every field, its limits and its meaning, once."""
ADDRESS_FIELDS = tuple(ORDER_INPUT["shipping_address"].fields)  # type: ignore[union-attr]  # an Obj by definition


def order_input_schema() -> dict[str, Any]:
    """The OpenAPI (JSON Schema) form of ``ORDER_INPUT``, with a full example body."""

    def text(t: Text | Ip | DateTime) -> dict[str, Any]:
        if isinstance(t, Ip):
            return {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}], "description": t.description}
        if isinstance(t, DateTime):
            return {"type": "string", "format": "date-time", "description": t.description}
        out: dict[str, Any] = {"type": "string", "maxLength": t.max_len, "description": t.description}
        if t.phone:
            out["pattern"] = PHONE_RE
        elif t.kind == "ascii":
            out["pattern"] = DEVICE_ID_RE
        elif t.required:
            out.update(minLength=1, pattern=r"\S")
        return out

    def obj(o: Obj) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "description": o.description,
            "properties": {name: text(t) for name, t in o.fields.items()},
        }
        required = [name for name, t in o.fields.items() if t.required]
        if required:
            out["required"] = required
        if o.closed:
            out.update(additionalProperties=False, nullable=True)
        return out

    props: dict[str, Any] = {}
    for name, spec in ORDER_INPUT.items():
        if isinstance(spec, Int):
            props[name] = {"type": "integer", "minimum": spec.lo, "maximum": spec.hi, "description": spec.description}
        else:
            props[name] = obj(spec)
    example = {
        name: spec.example if isinstance(spec, Int) else {k: t.example for k, t in spec.fields.items()}
        for name, spec in ORDER_INPUT.items()
    }
    required = [name for name, spec in ORDER_INPUT.items() if isinstance(spec, Int) or spec.required]
    return {"type": "object", "properties": props, "required": required, "example": example}


@dataclass(frozen=True)
class ClientSignals:
    """The buyer's device as seen by whoever relayed the order: the storefront's request, or a
    streamer tool's ``client`` block. Empty strings where nothing is known (an API order without a
    ``client`` block: the token's own IP and user agent say nothing about the buyer)."""

    ip: str = ""
    device_id: str = ""
    user_agent: str = ""


NO_CLIENT = ClientSignals()


@dataclass(frozen=True)
class OrderRequest:
    listing_id: int
    quantity: int
    buyer_external_id: str
    buyer_name: str
    buyer_phone: str
    address: dict[str, str]
    # Risk signals (issue 11), not the order's identity: they stay out of ``fingerprint``, so an
    # Idempotency-Key replay from another IP or device (a retry after a network switch, a tool
    # relaying through another node) is the same order, not a 422 conflict.
    client: ClientSignals = field(default=NO_CLIENT)
    buyer_registered_at: datetime | None = None
    # When the request reached the server (``apps.core.arrival``); None where nothing stamped it.
    received_at: datetime | None = None

    def fingerprint(self) -> str:
        fields = {
            "listing_id": self.listing_id,
            "quantity": self.quantity,
            "buyer_external_id": self.buyer_external_id,
            "buyer_name": self.buyer_name,
            "buyer_phone": self.buyer_phone,
            "address": self.address,
        }  # = dataclasses.asdict(self) without the signals and its deep copy (a test holds the two equal)
        return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def printable_user_agent(value: str) -> str:
    """A user agent header as a signal: control and other non-printable characters dropped,
    at most ``MAX_USER_AGENT`` characters (the storefront's; an API ``client.user_agent`` with
    them is refused instead)."""
    if not value.isprintable():
        value = "".join(c for c in value if c.isprintable())
    return value.strip()[:MAX_USER_AGENT]


def _text(obj: dict, key: str, errors: dict, *, required: bool, max_len: int, path: str, kind: str = "text") -> str:
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
    elif kind == "ascii" and not _DEVICE_ID.match(value):
        errors[f"{path}{key}"] = "Printable ASCII characters only, no spaces."
    elif kind == "printable" and not value.isprintable():
        errors[f"{path}{key}"] = "Control characters are not allowed."
    if not value.isascii():  # ASCII holds no surrogate
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


def _phone(obj: dict, errors: dict, *, path: str, required: bool, max_len: int) -> str:
    """A phone number in its one stored form (``apps.core.phone.normalize_phone``): the same
    mainland mobile written as +86 139-1111-0000 or 013911110000 is stored as 13911110000."""
    value = _text(obj, "phone", errors, required=required, max_len=max_len, path=path)
    if not value or f"{path}phone" in errors:
        return value
    if _STORED_MOBILE.fullmatch(value):  # already in its stored form (most requests)
        return value
    if not _PHONE.match(compact_phone(value)):
        errors[f"{path}phone"] = "Not a phone number."
        return value
    return normalize_phone(value)


def _ip(obj: dict, key: str, errors: dict, *, required: bool, path: str) -> str:
    value = _text(obj, key, errors, required=required, max_len=64, path=path)
    if not value or f"{path}{key}" in errors:
        return value
    normal = normal_ip(value)
    if normal is None:
        errors[f"{path}{key}"] = "Not an IPv4 or IPv6 address."
        return ""
    return normal


def _datetime(obj: dict, key: str, errors: dict, *, required: bool, path: str) -> datetime | None:
    value = _text(obj, key, errors, required=required, max_len=64, path=path)
    if not value or f"{path}{key}" in errors:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well-formed but impossible ("2026-02-30T00:00:00Z")
        parsed = None
    if parsed is None:
        errors[f"{path}{key}"] = "Not an ISO 8601 date-time (2024-03-02T10:15:00+08:00)."
        return None
    if parsed.utcoffset() is None:
        errors[f"{path}{key}"] = "The date-time needs a UTC offset (Z or +08:00)."
        return None
    if not in_range(parsed):
        errors[f"{path}{key}"] = RANGE_MESSAGE
        return None
    parsed = parsed.astimezone(UTC)
    if parsed > datetime.now(UTC) + CLOCK_SKEW:
        errors[f"{path}{key}"] = "Must not be in the future."
        return None
    return parsed


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


def parse_order_request(data: Any, received_at: datetime | None = None) -> OrderRequest:
    """Validate ``data`` by ``ORDER_INPUT`` (``received_at``: when the request arrived); raises
    ``InvalidOrder`` (400 ``invalid``) naming every
    bad field in ``extra.fields``."""
    if not isinstance(data, dict):
        raise InvalidOrder("the body must be a JSON object", extra={"fields": {}})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, spec in ORDER_INPUT.items():
        if isinstance(spec, Int):
            values[name] = _int(data, name, errors, lo=spec.lo, hi=spec.hi)
            continue
        given = data.get(name)
        out: dict[str, Any] = {}
        values[name] = out
        if given is None and not spec.required:
            continue
        if not isinstance(given, dict):
            errors[name] = f"An object {{{', '.join(spec.fields)}}} is required."
            continue
        path = f"{name}."
        unknown = given.keys() - spec.fields.keys() if spec.closed else ()
        for extra in sorted(unknown):
            errors[f"{path}{extra}"] = "Unknown field."
        for key, t in spec.fields.items():
            if isinstance(t, Ip):
                out[key] = _ip(given, key, errors, required=t.required, path=path)
            elif isinstance(t, DateTime):
                out[key] = _datetime(given, key, errors, required=t.required, path=path)
            elif t.phone:
                out[key] = _phone(given, errors, path=path, required=t.required, max_len=t.max_len)
            else:
                out[key] = _text(given, key, errors, required=t.required, max_len=t.max_len, path=path, kind=t.kind)
    if errors:
        first = next(iter(errors.items()))
        raise InvalidOrder(f"{first[0]}: {first[1]}", extra={"fields": errors})
    buyer, client = values["buyer"], values["client"]
    return OrderRequest(
        listing_id=values["listing"],
        quantity=values["quantity"],
        buyer_external_id=buyer["external_id"],
        buyer_name=buyer["name"],
        buyer_phone=buyer["phone"],
        address=values["shipping_address"],
        client=ClientSignals(client.get("ip", ""), client.get("device_id", ""), client.get("user_agent", ""))
        if client
        else NO_CLIENT,
        buyer_registered_at=buyer["registered_at"],
        received_at=received_at,
    )


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _KEY.fullmatch(value):  # fullmatch: "$" alone would let a trailing newline through
        raise InvalidOrder("Idempotency-Key must be 1-100 printable ASCII characters", code="invalid_idempotency_key")
    return value
