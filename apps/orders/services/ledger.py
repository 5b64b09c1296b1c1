"""The order ledger: an append-only, hash-chained log of status changes, one chain per merchant.

Each event stores its predecessor's hash and its own; the merchant's ``LedgerHead`` row holds the
tip and is locked to append, so seq numbers are gap-free and commit in order. Editing, inserting
or deleting any event breaks the chain at that point (``ledger_verify``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from apps.orders.models import LedgerHead, Order, OrderEvent

GENESIS = "0" * 64


def content_digest(
    *,
    merchant_id: int,
    order_public_id: str,
    from_status: str,
    to_status: str,
    actor: str,
    reason: str,
    created_at: datetime,
) -> str:
    """SHA-256 of what an event says (everything but its place in the chain)."""
    body = json.dumps(
        [
            merchant_id,
            order_public_id,
            from_status,
            to_status,
            actor,
            reason,
            created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def chain_hash(*, prev_hash: str, seq: int, digest: str) -> str:
    """The link: ``sha256("{prev_hash}:{seq}:{digest}")``. The same formula runs inside
    PostgreSQL on the hot path (``encode(sha256(convert_to(...))), 'hex')``)."""
    return hashlib.sha256(f"{prev_hash}:{seq}:{digest}".encode()).hexdigest()


def event_hash(
    *,
    merchant_id: int,
    seq: int,
    order_public_id: str,
    from_status: str,
    to_status: str,
    actor: str,
    reason: str,
    created_at: datetime,
    prev_hash: str,
) -> str:
    digest = content_digest(
        merchant_id=merchant_id,
        order_public_id=order_public_id,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        reason=reason,
        created_at=created_at,
    )
    return chain_hash(prev_hash=prev_hash, seq=seq, digest=digest)


def ledger_append(*, order: Order, from_status: str, to_status: str, actor: str, reason: str) -> OrderEvent:
    """Append one event. Call inside the transaction that changes the order; locks the head row
    (take it last: it is the merchant's most contended row)."""
    head = LedgerHead.objects.select_for_update().filter(pk=order.merchant_id).first()
    if head is None:
        LedgerHead.objects.get_or_create(merchant_id=order.merchant_id)
        head = LedgerHead.objects.select_for_update().get(pk=order.merchant_id)
    seq = head.seq + 1
    now = timezone.now()
    h = event_hash(
        merchant_id=order.merchant_id,
        seq=seq,
        order_public_id=order.public_id,
        from_status=from_status,
        to_status=to_status,
        actor=actor[:100],
        reason=reason[:200],
        created_at=now,
        prev_hash=head.last_hash,
    )
    event = OrderEvent.objects.create(
        merchant_id=order.merchant_id,
        seq=seq,
        order=order,
        from_status=from_status,
        to_status=to_status,
        actor=actor[:100],
        reason=reason[:200],
        created_at=now,
        prev_hash=head.last_hash,
        hash=h,
    )
    LedgerHead.objects.filter(pk=head.pk).update(seq=seq, last_hash=h)
    return event


@dataclass(frozen=True)
class LedgerProblem:
    merchant_id: int
    seq: int
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        return f"merchant {self.merchant_id}, seq {self.seq} (event id {self.event_id}): {self.problem}"


def ledger_verify(*, merchant_id: int | None = None) -> list[LedgerProblem]:
    """The first broken event of each merchant's chain (empty list: every chain is intact)."""
    heads = LedgerHead.objects.all() if merchant_id is None else LedgerHead.objects.filter(pk=merchant_id)
    problems: list[LedgerProblem] = []
    for head in heads.order_by("pk"):
        problem = _verify_chain(head)
        if problem:
            problems.append(problem)
    return problems


def _verify_chain(head: LedgerHead) -> LedgerProblem | None:
    prev = GENESIS
    expected_seq = 1
    events = (
        OrderEvent.objects.filter(merchant_id=head.pk)
        .select_related("order")
        .only(
            "id",
            "seq",
            "from_status",
            "to_status",
            "actor",
            "reason",
            "created_at",
            "prev_hash",
            "hash",
            "merchant_id",
            "order__public_id",
        )
        .order_by("seq")
    )
    for ev in events.iterator(chunk_size=2000):
        if ev.seq != expected_seq:
            return LedgerProblem(
                head.pk, expected_seq, ev.id, f"event seq {expected_seq} is missing (next is {ev.seq})"
            )
        if ev.prev_hash != prev:
            return LedgerProblem(head.pk, ev.seq, ev.id, "prev_hash does not match the previous event")
        h = event_hash(
            merchant_id=ev.merchant_id,
            seq=ev.seq,
            order_public_id=ev.order.public_id,
            from_status=ev.from_status,
            to_status=ev.to_status,
            actor=ev.actor,
            reason=ev.reason,
            created_at=ev.created_at,
            prev_hash=ev.prev_hash,
        )
        if h != ev.hash:
            return LedgerProblem(head.pk, ev.seq, ev.id, "event content does not match its hash (altered)")
        prev = ev.hash
        expected_seq += 1
    if head.seq != expected_seq - 1 or head.last_hash != prev:
        return LedgerProblem(
            head.pk, expected_seq, None, f"chain ends at seq {expected_seq - 1} but the head says {head.seq}"
        )
    return None
