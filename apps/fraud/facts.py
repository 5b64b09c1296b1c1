"""What the detector knows about one order: ``OrderFacts``, the one input of the features.

The same record is built from two sources, so that the model is trained on exactly what it later
scores:

- online (``apps/fraud/scoring.py``): from the order, its buyer, the signals stored with it
  (``orders.OrderSignals``) and what the hot-path rules counted when it was placed;
- offline (training, evaluation): from a simulated attempt (``simulation.SimulatedAttempt``),
  through ``facts_from_attempts``, with the same normalisers and the same counting the hot path
  does. Nothing the simulator alone knows (the label, actor or drop point) goes in.

Keys are normalised here (``normalise_phone``, ``normalise_address``), so two records link
when their keys are equal.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from apps.core.normalise import normalise_phone


@dataclass(frozen=True)
class OrderFacts:
    key: str  # the order's public id (online) or the attempt id (offline): unique in the show
    show: str  # the live session the order belongs to ("" when it has none)
    listing: str
    buyer: str  # the buyer's external id
    placed_ms: int  # when the order was placed, epoch milliseconds
    since_open_ms: int | None  # milliseconds after the listing opened (None: not known)
    quantity: int
    limit: int  # the listing's per-buyer limit
    registered_ms: int | None  # when the buyer's account was created, epoch ms (None: not given)
    phone_key: str | None  # normalise_phone of the buyer's or recipient's phone
    address_key: str | None  # normalise_address of the shipping address
    device: str | None  # the client's device id
    ip: str | None  # the buyer's IP (normalised text)
    ip24: str | None  # the IPv4 /24 (or IPv6 /48) the IP is in
    user_agent: str  # "" when not given
    early_attempts: int = 0  # attempts by this buyer/device/IP on the listing before it opened
    paid_after_ms: int | None = None  # how long after placing it was paid (None: not paid yet)


def buyer_phone_key(buyer_phone: str | None, recipient_phone: str | None) -> str | None:
    """The phone an order is linked by: the buyer's own account phone, normalised; the recipient's
    only when the buyer gave none (a household shipping to one recipient is not one buyer). The
    one definition for the hot path, the scorer and training."""
    return normalise_phone(buyer_phone or "") or normalise_phone(recipient_phone or "")


def ip_prefix(ip: str | None) -> str | None:
    """The network an IP is counted in for velocity: its IPv4 /24 or IPv6 /48, as text
    (``"203.0.113.0/24"``); None for no IP or one that does not parse."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


_HAN = "\u3400-\u4dbf\u4e00-\u9fff"
_LEADING_DISTRICT = re.compile(f"^([{_HAN}]{{2,4}}?)(?:新区|区|县)")
# A building (``14栋``, ``a栋``) with its unit (``2单元``), or the first part of ``14-2903``.
_BUILDING = re.compile(r"(?:([0-9]{1,3}|[a-z])栋(?:([0-9]{1,2})单元)?|([0-9]{1,3})-(?=[0-9]{3,4}))")
# The room right after it: ``2903``, or ``29-03`` (floor-room) when a suffix kept the
# normaliser from joining it. At most four digits: a glued junk number (``2903`` + ``1期``) is cut.
_ROOM = re.compile(r"([0-9]{1,2})-([0-9]{2})|([0-9]{3,4})")
_TRAILING_HAN = re.compile(f"[{_HAN}]+$")
_LEADING_HAN = re.compile(f"^[{_HAN}]+")
_ROAD_NUMBER = re.compile(r"([0-9]+)号$")
# A leading run that is only a road's name (人民路, 中山北路, 迎宾大道, 中关村大街), not a
# compound before it.
_BARE_ROAD = re.compile(f"^[{_HAN}]{{1,3}}(?:大街|大道|路|街|巷|道)$")


def drop_point_key(address_key: str | None) -> str | None:
    """The flat an address key points at, however the rest is written: ``region|compound|building
    |unit|room``, or None when the key names no building and room. Coarser than the address key
    on purpose: a jigging crew (地址变形) writes one drop point so that no two keys are equal --
    the road before or after the compound or left out, the district in the detail, ``14-2903``
    for ``14栋2903``, junk after the room (``(放门口)``, ``A座``, ``一期``). Here the road and
    anything after the room are dropped, a district written in the detail joins the region, and
    the compound is its first three characters (where it starts is clear; where a compound
    written before its road ends is not).

    Two different flats share a drop point only with the same district, compound start,
    building, unit and room. A pure function of the address key, so it can be stored and
    indexed beside it."""
    if not address_key:
        return None
    region, _, street = address_key.partition("|")
    m = _LEADING_DISTRICT.match(street)
    if m:
        region, street = region + m.group(1), street[m.end() :]
    building = _BUILDING.search(street)
    if not building:
        return None
    room = _ROOM.match(street, building.end())
    if not room:
        return None
    # The compound: the Han run just before the building (after a road number's 号), or, when a
    # road number comes right before the building, the Han run the street starts with.
    run = _TRAILING_HAN.search(street, 0, building.start())
    compound = (run.group(0).lstrip("号") if run else "")[:3]
    if not compound:
        lead = _LEADING_HAN.match(street)
        compound = lead.group(0)[:3] if lead else ""
        number = _ROAD_NUMBER.search(street, 0, building.start())
        if number and lead and _BARE_ROAD.match(lead.group(0)):
            # A bare road and its number (``人民路3号1栋101``): the number is the place, or every
            # ``1栋101`` on one road would be one flat.
            compound += number.group(1)
    return "|".join(
        (
            region,
            compound,
            building.group(1) or building.group(3),
            building.group(2) or "",
            room.group(3) or room.group(1) + room.group(2),
        )
    )
