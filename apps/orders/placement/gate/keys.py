"""Key names of the gate, built in one place.

Every key of a listing carries the hash tag ``{listing:N}``, so a Redis Cluster keeps one
listing's keys in one slot and the scripts run unchanged on a cluster.
"""

from __future__ import annotations

import hashlib


def listing_tag(listing_id: int) -> str:
    return f"lc:{{listing:{listing_id}}}"


def listing_keys(listing_id: int) -> dict[str, str]:
    tag = listing_tag(listing_id)
    return {
        "state": f"{tag}:state",  # hash: closed, opens, closes, quota, left, limit, ver
        "buyers": f"{tag}:buyers",  # hash: buyer key -> units held by live orders
        "holds": f"{tag}:holds",  # hash: order public id -> "buyer|quantity|ts_ms"
        "seen": f"{tag}:seen",  # hash: every hold id ever taken -> "1" (idempotent replays)
        "lock": f"{tag}:rebuild",  # rebuild lock
        "tally": f"{tag}:tally",  # hash: decision -> count (attempts and refusals, for reports)
        "tally_pending": f"{tag}:tally:pending",  # a tally being handed to the database, with its seq
        "tally_seq": f"{tag}:tally:seq",  # the last hand-over's sequence number
    }


def buyer_key(external_id: str) -> str:
    """The gate's buyer key: fixed length, no separators, same for API, storefront and rebuild."""
    return hashlib.blake2b(external_id.encode(), digest_size=10).hexdigest()


DRIFT_COUNTER = "lc:metrics:gate_drift"
"""Times the database refused what the gate allowed (counted, then reconciled)."""
RECONCILE_DUE = "lc:reconcile:due"
"""Set of listing ids the reconciler should look at first."""
