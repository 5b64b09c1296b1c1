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
from dataclasses import dataclass


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
