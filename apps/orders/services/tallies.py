"""The gate's tallies of attempts and refusals, handed from Redis to the database.

``reserve.lua`` counts every fresh decision of a listing in Redis (no round trip of its own: the
sold-out flood stays one script call). ``take_tallies`` moves those counts into
:class:`~apps.orders.models.ListingTally` rows, exactly once per hand-over: the counts are added
only if the row's last hand-over number is below this one's, in one conditional ``UPDATE``, and
Redis forgets the hand-over only after that commits (a repeated or a stalled, overtaken hand-over
adds nothing). Run by the reports' rollup before it reads a show's
listings. Without Redis it does nothing (the counts wait in Redis, or were lost with it)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F

from apps.catalog.models import Listing
from apps.core.redis import RedisNotConfigured, get_client, is_redis_error

from ..models import ListingTally
from ..placement.gate import scripts as gate

log = logging.getLogger(__name__)

FIELDS = {"ok": "accepted", "closed": "closed", "over_limit": "over_limit", "sold_out": "sold_out"}
"""``reserve.lua``'s outcomes and the row's columns."""


def take_tallies(listing_ids: Iterable[int], client: Any = None) -> int:
    """Add each listing's pending counts to its row. Returns how many hand-overs were added (a
    repeated one is not). A Redis failure stops the hand-over quietly: nothing is lost, the next
    call takes it."""
    ids = sorted(set(listing_ids))
    if not ids:
        return 0
    try:
        client = client or get_client()
    except RedisNotConfigured:
        return 0
    merchants = dict(Listing.objects.filter(pk__in=ids).values_list("pk", "merchant_id"))
    added = 0
    for listing_id in ids:
        if listing_id not in merchants:
            continue
        try:
            tally = gate.gate_tally_drain(listing_id, client=client)
        except Exception as exc:
            if not is_redis_error(exc):
                raise
            log.warning("gate tallies not taken: Redis unavailable", exc_info=True)
            return added
        if tally is None:
            continue
        with transaction.atomic():
            ListingTally.objects.get_or_create(listing_id=listing_id, defaults={"merchant_id": merchants[listing_id]})
            changed = ListingTally.objects.filter(listing_id=listing_id, seq__lt=tally.seq).update(
                seq=tally.seq, **{FIELDS[k]: F(FIELDS[k]) + n for k, n in tally.counts.items() if n}
            )
        added += changed
        try:
            gate.gate_tally_ack(listing_id, tally.seq, client=client)
        except Exception as exc:
            if not is_redis_error(exc):
                raise
            log.warning("gate tally hand-over not acknowledged; the next one repeats it harmlessly", exc_info=True)
            return added
    return added


def tallies(listing_ids: Iterable[int]) -> dict[int, ListingTally]:
    """The listings' rows (a listing no attempt reached has none)."""
    return {t.listing_id: t for t in ListingTally.objects.filter(listing_id__in=list(listing_ids))}
