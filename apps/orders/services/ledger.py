"""The order ledger: an append-only, hash-chained log of status changes, one chain per merchant.

Each event stores its predecessor's hash and its own: ``hash = sha256("{prev_hash}:{seq}:{digest}")``
where ``digest`` is HMAC-SHA256 of the event's content keyed with ``settings.LEDGER_KEY``. The
digest is not stored and the key never reaches the database, so whoever can write the database
can neither alter an event nor recompute the chain after altering one. The merchant's
``LedgerHead`` row holds the tip and is locked to append, so seq numbers are gap-free and commit
in order.

``ledger_checkpoint`` (every minute, django-q2) verifies what each chain gained since its last
checkpoint and appends a signed checkpoint line outside the database (``checkpoints.py``), so
deleting the newest events and winding the head back is caught too. ``ledger_verify`` walks every
chain that has events, a head or checkpoints, checks it against its checkpoints, and checks that
every order's status equals the ``to_status`` of its last event (generated history, made without
events, aside: ``_status_problems``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from apps.merchants.models import Merchant
from apps.orders.models import LedgerHead, Order, OrderEvent

from .checkpoints import (
    checkpoint_append,
    checkpoint_entries,
    checkpoint_latest,
    checkpoint_lock,
    checkpoint_merchants,
    checkpoint_path,
    checkpoint_sign,
    ledger_key,
)
from .state_machine import is_recorded_step

log = logging.getLogger(__name__)
GENESIS = "0" * 64
STATUS_PROBLEMS_SHOWN = 100  # per merchant; the rest are counted


def content_body(
    *,
    merchant_id: int,
    order_public_id: str,
    from_status: str,
    to_status: str,
    actor: str,
    reason: str,
    created_at: datetime,
) -> bytes:
    """What an event says (everything but its place in the chain), as canonical JSON. The
    stdlib proof verifier (``livecommerce/verify_proof.py``) builds the same bytes."""
    return json.dumps(
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
    ).encode()


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
    """HMAC-SHA256 of what an event says, keyed with ``LEDGER_KEY``. Computed in Python on both
    placement paths (the PostgreSQL function receives it, never the key)."""
    body = content_body(
        merchant_id=merchant_id,
        order_public_id=order_public_id,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        reason=reason,
        created_at=created_at,
    )
    return hmac.new(ledger_key(), body, hashlib.sha256).hexdigest()


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
    head = _head_for_update(order.merchant_id)
    event = _chained(head, order=order, from_status=from_status, to_status=to_status, actor=actor, reason=reason)
    event.save(force_insert=True)
    LedgerHead.objects.filter(pk=head.pk).update(seq=head.seq, last_hash=head.last_hash)
    return event


@dataclass(frozen=True)
class LedgerEntry:
    """One event for :func:`ledger_append_many`: what ``ledger_append`` takes for one order."""

    order: Order
    from_status: str
    to_status: str
    actor: str
    reason: str


def ledger_append_many(*, merchant_id: int, entries: Sequence[LedgerEntry]) -> list[OrderEvent]:
    """``ledger_append`` for many orders of one merchant under one lock of its head: the events
    are chained in the order given (the same links, hashes and seq numbers as that many
    ``ledger_append`` calls), inserted in one statement, and the head moved once. Call inside the
    transaction that changes the orders, last (the head is the merchant's most contended row).
    Returns the events in the order given."""
    if any(e.order.merchant_id != merchant_id for e in entries):
        raise ValueError("ledger_append_many: every order must be the merchant's")
    if not entries:
        return []
    head = _head_for_update(merchant_id)
    events = [
        _chained(head, order=e.order, from_status=e.from_status, to_status=e.to_status, actor=e.actor, reason=e.reason)
        for e in entries
    ]
    OrderEvent.objects.bulk_create(events, batch_size=LEDGER_INSERT_BATCH)
    LedgerHead.objects.filter(pk=head.pk).update(seq=head.seq, last_hash=head.last_hash)
    return events


LEDGER_INSERT_BATCH = 1000  # events per INSERT of ledger_append_many


def _head_for_update(merchant_id: int) -> LedgerHead:
    """The merchant's ledger head, locked (made first when the merchant has none yet)."""
    head = LedgerHead.objects.select_for_update().filter(pk=merchant_id).first()
    if head is None:
        LedgerHead.objects.get_or_create(merchant_id=merchant_id)
        head = LedgerHead.objects.select_for_update().get(pk=merchant_id)
    return head


def _chained(
    head: LedgerHead, *, order: Order, from_status: str, to_status: str, actor: str, reason: str
) -> OrderEvent:
    """The next event of the chain whose tip is ``head`` (locked), not saved yet; moves ``head``
    (in memory) onto it."""
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
    event = OrderEvent(
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
    head.seq, head.last_hash = seq, h
    return event


@dataclass(frozen=True)
class LedgerProblem:
    merchant_id: int
    seq: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        if self.seq is None:
            return f"merchant {self.merchant_id}: {self.problem}"
        return f"merchant {self.merchant_id}, seq {self.seq} (event id {self.event_id}): {self.problem}"


@dataclass(frozen=True)
class LedgerWalk:
    seq: int  # the last event of the intact part
    hash: str
    problem: LedgerProblem | None = None


CHAIN_FIELDS = (
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
"""What recomputing an event's link reads (``OrderEvent`` with its order)."""


def event_digest(ev: OrderEvent) -> str:
    """The keyed digest of a stored event (loaded with ``CHAIN_FIELDS``)."""
    return content_digest(
        merchant_id=ev.merchant_id,
        order_public_id=ev.order.public_id,
        from_status=ev.from_status,
        to_status=ev.to_status,
        actor=ev.actor,
        reason=ev.reason,
        created_at=ev.created_at,
    )


def ledger_walk(
    merchant_id: int,
    *,
    after_seq: int = 0,
    prev: str = GENESIS,
    upto: int | None = None,
    checkpoints: dict[int, tuple[int, str]] | None = None,
    links: list[dict[str, Any]] | None = None,
) -> LedgerWalk:
    """Recompute the merchant's chain from ``after_seq`` (whose hash is ``prev``) up to ``upto``,
    with the key; stops at the first event that is missing, misplaced or altered, or whose hash
    differs from a signed checkpoint (``checkpoints``: seq -> (line number, head_hash)). With
    ``links``, each verified event's ``{seq, digest}`` is appended to it (the buyer proof)."""
    expected_seq = after_seq + 1
    events = OrderEvent.objects.filter(merchant_id=merchant_id, seq__gt=after_seq)
    if upto is not None:
        events = events.filter(seq__lte=upto)
    events = events.select_related("order").only(*CHAIN_FIELDS).order_by("seq")
    for ev in events.iterator(chunk_size=2000):
        if ev.seq != expected_seq:
            problem = f"event seq {expected_seq} is missing (next is {ev.seq})"
            return LedgerWalk(expected_seq - 1, prev, LedgerProblem(merchant_id, expected_seq, ev.id, problem))
        if ev.prev_hash != prev:
            problem = "prev_hash does not match the previous event"
            return LedgerWalk(expected_seq - 1, prev, LedgerProblem(merchant_id, ev.seq, ev.id, problem))
        digest = event_digest(ev)
        h = chain_hash(prev_hash=prev, seq=ev.seq, digest=digest)
        if h != ev.hash:
            problem = "event content does not match its hash (altered, or rehashed without the ledger key)"
            return LedgerWalk(expected_seq - 1, prev, LedgerProblem(merchant_id, ev.seq, ev.id, problem))
        signed = (checkpoints or {}).get(ev.seq)
        if signed is not None and signed[1] != h:
            problem = (
                f"the chain differs from the signed checkpoint at {checkpoint_path(merchant_id)} line {signed[0]} "
                "(the chain was rewritten)"
            )
            return LedgerWalk(expected_seq - 1, prev, LedgerProblem(merchant_id, ev.seq, ev.id, problem))
        if links is not None:
            links.append({"seq": ev.seq, "digest": digest})
        prev = h
        expected_seq += 1
    return LedgerWalk(expected_seq - 1, prev)


def ledger_verify(*, merchant_id: int | None = None) -> list[LedgerProblem]:
    """Everything wrong with the ledger (empty list: intact). For every merchant that has events,
    a head row or a checkpoint file: a missing head, the first broken event of its chain, a chain
    that ends before its newest signed checkpoint (events deleted after it), checkpoint lines that
    do not verify, a head that is not the chain's tip. Then, in one query over the orders, every
    order whose status is not the ``to_status`` of its last event (by seq). Reads only; run it
    outside a long transaction on a big ledger."""
    problems: list[LedgerProblem] = []
    for m in _ledger_merchants(merchant_id):
        problems += _verify_merchant(m)
    problems += _status_problems(merchant_id)
    problems += _history_problems(merchant_id)
    return problems


def _history_problems(merchant_id: int | None) -> list[LedgerProblem]:
    """Every order's recorded history must be one the state machine allows, in its own
    merchant's chain: the first event ``"" -> pending_payment``, each next event starting where
    the previous one ended, each step a transition (or a change that keeps the status). One pass
    over the events in (order, seq) order. Catches an event moved to another order, an illegal
    step written by hand, and an order moved to another merchant. (The first event of a generated
    order starts where the history left it: its show's ``generated`` mark.)"""
    events = OrderEvent.objects.order_by("order_id", "seq")
    if merchant_id is not None:
        events = events.filter(Q(merchant_id=merchant_id) | Q(order__merchant_id=merchant_id))
    problems: list[LedgerProblem] = []
    shown: dict[int, int] = {}
    current_order: int | None = None
    previous_to: str | None = None
    fields = ("order_id", "order__public_id", "order__merchant_id", "merchant_id", "seq", "id")
    rows = events.values_list(*fields, "from_status", "to_status", "order__session__generated").iterator(
        chunk_size=5000
    )
    for order_id, public_id, order_merchant, event_merchant, seq, event_id, frm, to, generated in rows:
        if order_id != current_order:
            current_order, previous_to = order_id, None
            if generated and frm:
                # Generated history has no events of its own (``_status_problems``): the first
                # event of such an order, recorded when someone acted on it, starts where the
                # history left it, with a step the state machine allows.
                previous_to = frm
        problem = None
        if order_merchant != event_merchant:
            problem = (
                f"event of order {public_id} is in merchant {event_merchant}'s chain, "
                f"the order is merchant {order_merchant}'s"
            )
        elif not is_recorded_step(previous_to, frm, to):
            after = "as its first event" if previous_to is None else f"after {previous_to!r}"
            problem = f"order {public_id} went {frm!r} -> {to!r} {after}: not a step the state machine allows"
        previous_to = to
        if problem is not None:
            shown[event_merchant] = shown.get(event_merchant, 0) + 1
            if shown[event_merchant] <= STATUS_PROBLEMS_SHOWN:
                problems.append(LedgerProblem(event_merchant, seq, event_id, problem))
    return problems


def _ledger_merchants(merchant_id: int | None) -> list[int]:
    if merchant_id is not None:
        return [merchant_id]
    with_events = Merchant.objects.filter(Exists(OrderEvent.objects.filter(merchant_id=OuterRef("pk"))))
    return sorted(
        {
            *with_events.values_list("pk", flat=True),
            *LedgerHead.objects.values_list("pk", flat=True),
            *checkpoint_merchants(),
        }
    )


def _verify_merchant(merchant_id: int) -> list[LedgerProblem]:
    problems: list[LedgerProblem] = []
    path = checkpoint_path(merchant_id)
    checkpoints: dict[int, tuple[int, str]] = {}
    newest: tuple[int, dict] | None = None
    for entry in checkpoint_entries(merchant_id):
        if entry.line is None:
            problems.append(
                LedgerProblem(merchant_id, None, None, f"checkpoint {path} line {entry.lineno}: {entry.problem}")
            )
            continue
        if newest is not None and entry.line["seq"] < newest[1]["seq"]:
            problem = (
                f"checkpoint {path} line {entry.lineno}: seq {entry.line['seq']} goes back from {newest[1]['seq']}"
            )
            problems.append(LedgerProblem(merchant_id, None, None, problem))
            continue
        checkpoints[entry.line["seq"]] = (entry.lineno, entry.line["head_hash"])
        newest = (entry.lineno, entry.line)
    head = LedgerHead.objects.filter(pk=merchant_id).first()
    if head is None and (newest is not None or OrderEvent.objects.filter(merchant_id=merchant_id).exists()):
        problems.append(
            LedgerProblem(merchant_id, None, None, "the merchant has a ledger but no ledger head row (deleted)")
        )
    walk = ledger_walk(merchant_id, checkpoints=checkpoints)
    if walk.problem is not None:
        problems.append(walk.problem)
        return problems
    if newest is not None and walk.seq < newest[1]["seq"]:
        lineno, line = newest
        problem = (
            f"the chain ends at seq {walk.seq} but the checkpoint at {path} line {lineno} (signed {line['at']}) "
            f"covers seq {line['seq']}: events after seq {walk.seq} were deleted"
        )
        problems.append(LedgerProblem(merchant_id, walk.seq + 1, None, problem))
    if head is not None and (head.seq != walk.seq or head.last_hash != walk.hash):
        problem = f"chain ends at seq {walk.seq} but the head says {head.seq}"
        if head.seq == walk.seq:
            problem = f"the head's hash is not the hash of seq {walk.seq}"
        problems.append(LedgerProblem(merchant_id, walk.seq + 1, None, problem))
    return problems


def _status_problems(merchant_id: int | None) -> list[LedgerProblem]:
    """Orders whose status is not the ``to_status`` of their last event: one query (a correlated
    subquery on the events' order index), one pass.

    Generated history (``apps.reports.history``: orders of a show marked ``generated``) is written
    without events, so that it can be deleted again without touching the chain; such an order is
    not a problem while it has no event at all. Once anything records an event for it, it is held
    to its events like any order (a real order always has its first event, so marking its show
    generated hides nothing: its status is still checked, and deleting its events breaks the chain)."""
    last_to = OrderEvent.objects.filter(order_id=OuterRef("pk")).order_by("-seq").values("to_status")[:1]
    orders = (
        Order.objects.annotate(last_to=Subquery(last_to))
        .filter(Q(last_to__isnull=True) | ~Q(status=F("last_to")))
        .exclude(Q(last_to__isnull=True) & Q(session__generated=True))
    )
    if merchant_id is not None:
        orders = orders.filter(merchant_id=merchant_id)
    problems: list[LedgerProblem] = []
    shown: dict[int, int] = {}
    rows = orders.order_by("merchant_id", "pk").values_list("merchant_id", "public_id", "status", "last_to")
    for m, public_id, status, last in rows.iterator(chunk_size=2000):
        shown[m] = shown.get(m, 0) + 1
        if shown[m] > STATUS_PROBLEMS_SHOWN:
            continue
        if last is None:
            problem = f"order {public_id} is {status!r} but has no ledger event"
        else:
            problem = f"order {public_id} is {status!r} but its last ledger event says {last!r}"
        problems.append(LedgerProblem(m, None, None, problem))
    for m, n in shown.items():
        if n > STATUS_PROBLEMS_SHOWN:
            more = n - STATUS_PROBLEMS_SHOWN
            problems.append(
                LedgerProblem(m, None, None, f"and {more} more orders whose status is not their last event")
            )
    return problems


# --- checkpoints ---------------------------------------------------------------------------------
@dataclass
class CheckpointRun:
    written: list[dict] = field(default_factory=list)
    problems: list[LedgerProblem] = field(default_factory=list)
    busy: bool = False  # another checkpoint run held the lock; nothing done


def ledger_checkpoint(*, now: datetime | None = None) -> CheckpointRun:
    """For each merchant whose head moved since its last checkpoint: recompute, with the key, the
    events since that checkpoint (from genesis for the first one) and, when they chain up to the
    head, append a signed line ``{merchant, seq, head_hash, at, sig}`` to the merchant's
    checkpoint file. A chain that does not verify is not signed (reported and logged instead), so
    a checkpoint only ever vouches for a chain that was intact when it was taken.

    Never inside a transaction: a checkpoint must only sign what is committed (a rollback would
    leave a signed line the database never held). One run at a time (a file lock)."""
    if connection.in_atomic_block:
        raise RuntimeError("ledger_checkpoint must not run inside a transaction: it must only sign committed events")
    run = CheckpointRun()
    with checkpoint_lock() as mine:
        if not mine:
            run.busy = True
            return run
        at = (now or timezone.now()).astimezone(UTC).isoformat(timespec="microseconds")
        for m, seq, last_hash in LedgerHead.objects.order_by("pk").values_list("pk", "seq", "last_hash"):
            latest = checkpoint_latest(m)
            if latest is not None and latest["seq"] >= seq:
                if latest["seq"] > seq:
                    problem = f"the head (seq {seq}) is behind the signed checkpoint (seq {latest['seq']})"
                    run.problems.append(LedgerProblem(m, None, None, problem))
                continue
            after, prev = (latest["seq"], latest["head_hash"]) if latest is not None else (0, GENESIS)
            walk = ledger_walk(m, after_seq=after, prev=prev, upto=seq)
            if walk.problem is not None:
                run.problems.append(walk.problem)
                continue
            if walk.seq != seq or walk.hash != last_hash:
                problem = f"the head (seq {seq}) is not the tip of the chain (seq {walk.seq})"
                run.problems.append(LedgerProblem(m, None, None, problem))
                continue
            line = checkpoint_sign(merchant=m, seq=seq, head_hash=last_hash, at=at)
            checkpoint_append(line)
            run.written.append(line)
    for p in run.problems:
        log.error("ledger checkpoint refused to sign: %s", p)
    return run
