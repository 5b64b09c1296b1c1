"""Types shared by the carrier protocols (``kuaidi100``, ``kdniao``): credentials, the canonical
waybill request and answer, the canonical tracking snapshot, the express-company code table and
the typed errors.

Pure Python: no Django, no settings, no database, no network. Times are aware UTC datetimes
(carriers write Beijing time, ``yyyy-MM-dd HH:mm:ss``: :func:`beijing_time`). Formats and check
values: ``docs/carriers.md`` (its sections are cited in each protocol module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final, Literal

Carrier = Literal["kuaidi100", "kdniao"]
CARRIERS: Final[tuple[Carrier, ...]] = ("kuaidi100", "kdniao")

# Express companies by our code (the one Kdniao uses), and each aggregator's own code.
EXPRESS: Final[dict[str, dict[str, str]]] = {
    "SF": {"name": "顺丰速运", "kuaidi100": "shunfeng", "kdniao": "SF"},
    "ZTO": {"name": "中通快递", "kuaidi100": "zhongtong", "kdniao": "ZTO"},
    "YTO": {"name": "圆通速递", "kuaidi100": "yuantong", "kdniao": "YTO"},
    "STO": {"name": "申通快递", "kuaidi100": "shentong", "kdniao": "STO"},
    "YD": {"name": "韵达快递", "kuaidi100": "yunda", "kdniao": "YD"},
    "JD": {"name": "京东物流", "kuaidi100": "jd", "kdniao": "JD"},
    "EMS": {"name": "EMS", "kuaidi100": "ems", "kdniao": "EMS"},
}


def express_code(express: str, carrier: Carrier) -> str:
    """The aggregator's code of one of our express companies; ValueError for an unknown one."""
    try:
        return EXPRESS[express][carrier]
    except KeyError:
        raise ValueError(f"unknown express company {express!r}") from None


def express_from(code: str, carrier: Carrier) -> str | None:
    """Our code for an aggregator's express code (None when the table does not know it)."""
    for ours, names in EXPRESS.items():
        if names[carrier].lower() == (code or "").lower():
            return ours
    return None


BEIJING: Final = timezone(timedelta(hours=8))


def beijing_time(text: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time (what the carriers write) as aware UTC; None if blank
    or unreadable."""
    text = (text or "").strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING).astimezone(UTC)
        except ValueError:
            continue
    return None


# --- credentials ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """One merchant's account with an aggregator. Secrets stay out of ``repr``.

    - Kuaidi100: ``app_id`` = *customer*, ``app_key`` = *key*, ``app_secret`` = *secret* (the
      e-waybill API's), ``push_salt`` = the salt it signs tracking pushes with.
    - Kdniao: ``app_id`` = *EBusinessID*, ``app_key`` = *AppKey* (signs both directions).
    - Both: ``partner_id`` / ``partner_key`` / ``month_code`` = the express company's network
      account the waybill numbers are drawn from (Kuaidi100 partnerId/partnerKey, Kdniao
      CustomerName/CustomerPwd/MonthCode), where that company needs one.
    """

    carrier: Carrier
    app_id: str
    app_key: str = field(repr=False)
    app_secret: str = field(default="", repr=False)
    push_salt: str = field(default="", repr=False)
    partner_id: str = ""
    partner_key: str = field(default="", repr=False)
    month_code: str = field(default="", repr=False)


# --- waybills ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Party:
    """Sender or receiver. ``detail`` is the street address below the district."""

    name: str
    mobile: str
    province: str
    city: str
    district: str
    detail: str

    @property
    def full_address(self) -> str:
        return f"{self.province}{self.city}{self.district}{self.detail}"


@dataclass(frozen=True, kw_only=True)
class WaybillRequest:
    """One parcel to get a waybill number for. ``order_code`` is our parcel's code, unique per
    merchant: the carrier's idempotency key (the same code twice is one waybill)."""

    order_code: str
    express: str  # our express-company code (EXPRESS)
    sender: Party
    receiver: Party
    items: tuple[tuple[str, int], ...]  # (goods name, quantity)
    weight_kg: Decimal | None = None
    pay_type: Literal["shipper", "consignee", "monthly"] = "monthly"
    callback_url: str | None = None  # subscribe the waybill's tracking to this URL at once, where supported


@dataclass(frozen=True, kw_only=True)
class Waybill:
    """A carrier's answer to a WaybillRequest. ``routing_code`` is the 大头笔 printed on the label;
    ``label`` what the carrier returned to print (an image/HTML URL or HTML), possibly empty."""

    carrier: Carrier
    express: str
    order_code: str
    waybill_no: str
    routing_code: str = ""
    origin_code: str = ""
    dest_code: str = ""
    label: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


# --- tracking ---------------------------------------------------------------------------------

TrackState = Literal["none", "collected", "in_transit", "delivering", "delivered", "problem", "returned"]
TRACK_STATES: Final[tuple[TrackState, ...]] = (
    "none",
    "collected",
    "in_transit",
    "delivering",
    "delivered",
    "problem",
    "returned",
)


@dataclass(frozen=True, kw_only=True)
class TrackEvent:
    at: datetime | None  # aware UTC
    text: str
    location: str = ""
    code: str = ""  # the carrier's own status code for this event, where it gives one


@dataclass(frozen=True, kw_only=True)
class Tracking:
    """A waybill's trace as one push (or query) tells it. ``state`` is canonical (the mapping tables
    in each protocol module); ``final`` says the carrier will push no more (signed, or it gave up
    polling); ``events`` oldest first; ``carrier_state`` the carrier's own value; ``raw`` the item
    as received."""

    carrier: Carrier
    waybill_no: str
    express: str | None
    state: TrackState
    carrier_state: str
    final: bool
    events: tuple[TrackEvent, ...]
    raw: dict[str, Any]
    order_code: str | None = None


# --- errors -----------------------------------------------------------------------------------


class CarrierError(Exception):
    """A carrier call or message failed. ``code`` is the carrier's code (or ours for transport
    failures); ``retryable`` whether the same call may succeed later; ``outcome_unknown`` whether it
    may have been applied although no success came back (a timeout after sending)."""

    default_code = "carrier_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        outcome_unknown: bool = False,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.outcome_unknown = outcome_unknown
        self.http_status = http_status


class CarrierRejected(CarrierError):
    """The carrier answered and refused (bad parameters, a rejected address, no waybill stock)."""

    default_code = "carrier_rejected"


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached or answered an error it may not repeat (busy, 5xx)."""

    default_code = "carrier_unavailable"
    default_retryable = True


class CarrierTimeout(CarrierUnavailable):
    default_code = "carrier_timeout"


class BadSignature(CarrierError):
    """An inbound push whose signature does not verify (or is missing where required)."""

    default_code = "bad_signature"


class BadMessage(CarrierError):
    """An inbound push that cannot be read (not the carrier's format)."""

    default_code = "bad_message"
