"""Reads for the review screens: who an assessment is linked to in its show, and by what.

Two buyers are linked when their assessments in one show share a normalised phone, a normalised
address, a drop point (the same flat written differently: address jigging), a device id or an IP
(a show-less order: the same listing). A phone, an address or a device shared by several
accounts is what farms and brushing rings look like; an IP alone is weak evidence (carrier NAT and
campus networks put hundreds of genuine fans behind one address), so it is counted and shown apart
and never makes a buyer "linked" on its own in the counts. A drop point is only named where the
address itself differs (an equal address says it already). The same buyer's other orders are
not links.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, Q, Value, When

from .models import RiskAssessment

# (kind, field): the kinds in the order the screens show them.
SHARED = (
    ("phone", "phone_key"),
    ("address", "address_key"),
    ("drop_point", "drop_point"),
    ("device", "device_id"),
    ("ip", "ip"),
)
STRONG = ("phone", "address", "drop_point", "device")
LINKED_LIMIT = 100  # rows of the detail page's table; the total is counted


@dataclass(frozen=True)
class LinkedBuyer:
    assessment: RiskAssessment  # with its order and the order's buyer
    shares: tuple[str, ...]  # kinds from SHARED, in that order


@dataclass
class LinkCounts:
    buyers: int = 0  # other buyers sharing a phone, address or device
    by_kind: dict[str, int] = field(default_factory=dict)  # kind -> other buyers sharing it (IP too)


def _scope(a: RiskAssessment) -> Q | None:
    if a.session_id:
        return Q(session_id=a.session_id)
    if a.listing_id:
        return Q(session__isnull=True, listing_id=a.listing_id)
    return None


def _shared_q(a: RiskAssessment, kinds: Iterable[str]) -> Q:
    q = Q()
    for kind, name in SHARED:
        value = getattr(a, name)
        if kind in kinds and value:
            q |= Q(**{name: value})
    return q


def shares_of(a: RiskAssessment, other: RiskAssessment) -> tuple[str, ...]:
    kinds = [kind for kind, name in SHARED if getattr(a, name) and getattr(a, name) == getattr(other, name)]
    return tuple(k for k in kinds if not (k == "drop_point" and "address" in kinds))


def linked_buyers(a: RiskAssessment, *, limit: int = LINKED_LIMIT) -> tuple[list[LinkedBuyer], int]:
    """The other buyers' assessments in ``a``'s show that share something with it, strongest links
    first (each phone, address or device counts twice an IP), at most ``limit``; and how many
    there are in all. Two queries."""
    scope = _scope(a)
    shared = _shared_q(a, [kind for kind, _name in SHARED])
    if scope is None or not shared:
        return [], 0
    weight = sum(
        (
            Case(When(Q(**{name: getattr(a, name)}), then=Value(1 if kind == "ip" else 2)), default=Value(0))
            for kind, name in SHARED
            if getattr(a, name)
        ),
        Value(0),
    )
    rows = (
        RiskAssessment.objects.filter(scope, shared, merchant_id=a.merchant_id)
        .exclude(buyer_external_id=a.buyer_external_id)
        .select_related("order", "order__buyer")
    )
    total = rows.count()
    page = rows.alias(_weight=weight).order_by("-_weight", "-id")[:limit]
    return [LinkedBuyer(other, shares_of(a, other)) for other in page], total


def link_counts(assessments: list[RiskAssessment]) -> dict[int, LinkCounts]:
    """For a page of assessments (a changelist page): how many other buyers each is linked to,
    in all and by kind. Two queries for the whole page, whatever its size."""
    out = {a.pk: LinkCounts() for a in assessments}
    scoped = [a for a in assessments if _scope(a) is not None]
    if not scoped:
        return out
    merchants = {a.merchant_id for a in scoped}
    sessions = {a.session_id for a in scoped if a.session_id}
    listings = {a.listing_id for a in scoped if not a.session_id}
    where = Q(session_id__in=sessions) | Q(session__isnull=True, listing_id__in=listings)

    def values_of(kinds: Iterable[str]) -> Q:
        q = Q()
        for kind, name in SHARED:
            if kind in kinds:
                values = {getattr(a, name) for a in scoped if getattr(a, name)}
                if values:
                    q |= Q(**{f"{name}__in": values})
        return q

    base = RiskAssessment.objects.filter(where, merchant_id__in=merchants)
    # Phone, address, device: the rows themselves (a cluster is tens of buyers, not thousands),
    # so that a buyer sharing two of them counts once.
    strong = values_of(STRONG)
    rows: list[dict[str, Any]] = []
    if strong:
        fields = ("session_id", "listing_id", "buyer_external_id", *(name for kind, name in SHARED if kind in STRONG))
        rows = [dict(row) for row in base.filter(strong).values(*fields)]
    # IP: counted in the database (a campus IP may carry thousands of genuine buyers).
    ip_counts: dict[tuple[int | None, int | None, str], int] = {}
    ips = {a.ip for a in scoped if a.ip}
    if ips:
        for counted in (
            base.filter(ip__in=ips)
            .values("session_id", "listing_id", "ip")
            .annotate(n=Count("buyer_external_id", distinct=True))
        ):
            listing = None if counted["session_id"] else counted["listing_id"]
            ip_counts[(counted["session_id"], listing, counted["ip"])] = counted["n"]
    by_scope: dict[tuple[int | None, int | None], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_scope[(row["session_id"], None if row["session_id"] else row["listing_id"])].append(row)
    for a in scoped:
        where_key = (a.session_id, None if a.session_id else a.listing_id)
        counts = out[a.pk]
        linked: set[str] = set()
        for kind, name in SHARED:
            value = getattr(a, name)
            if not value or kind == "ip":
                continue
            others = [r for r in by_scope[where_key] if r["buyer_external_id"] != a.buyer_external_id]
            buyers = {
                r["buyer_external_id"]
                for r in others
                if r[name] == value
                and not (kind == "drop_point" and a.address_key and r["address_key"] == a.address_key)
            }
            if buyers:
                counts.by_kind[kind] = len(buyers)
            linked |= buyers
        counts.buyers = len(linked)
        if a.ip:
            # the buyer's own assessments are among those counted (when they share the IP, as a
            # buyer always does with their own order)
            n = ip_counts.get((*where_key, a.ip), 0) - 1
            if n > 0:
                counts.by_kind["ip"] = n
    return out
