"""Batch shipping (批量发货): confirmed orders -> parcels (merged per buyer and address) ->
waybills from the merchant's carrier account -> ``shipped`` through the state machine -> labels
and a picking list.

A batch is created in one request (:func:`batch_create`: the selection is checked and frozen into
items, nothing else is written) and run by a django-q2 task (:func:`batch_run`). Every step is
idempotent, so a run repeated, or a rerun after a crash or a carrier outage, does nothing twice:

- an order is in at most one parcel (``ParcelOrder.order`` is unique), so a rerun finds the
  parcel the first run made;
- the parcel's ``code`` is the carrier's idempotency key: a waybill call retried after a timeout
  answers the number of the first call, never a second one;
- ``confirmed -> shipped`` goes through the transition service (``orders_transition_many``, a
  chunk of whole parcels per transaction) with ``allowed_from=(confirmed,)``, so an order shipped
  already is not shipped again.

A carrier that times out or is down leaves its parcels' orders ``retry``; the batch reruns them
after a back-off (``RETRY_DELAYS``), and after the last try they fail into the exception queue.
A carrier that refuses a parcel fails its orders alone (exception ``carrier_rejected``); an order
with a bad address or a line that holds no stock never reaches the carrier (exceptions
``bad_address`` / ``stock_short``), and a merged parcel goes without it (the split).
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.bulk import update_rows
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.core.normalise import normalise_address
from apps.core.phone import normalize_phone
from apps.orders.errors import InvalidTransition
from apps.orders.models import PLATFORM_CHANNELS, Order, OrderLine, OrderStatus
from apps.orders.services.transitions import TransitionItem, orders_transition_many

from .carriers.base import EXPRESS, CarrierError, CarrierRejected, Party, Waybill, WaybillRequest
from .carriers.transport import CarrierClient
from .models import (
    CarrierAccount,
    ExceptionKind,
    FulfilmentException,
    FulfilmentSettings,
    Parcel,
    ParcelOrder,
    ShipBatch,
    ShipBatchItem,
)
from .selectors import account_default, account_push_url

log = logging.getLogger(__name__)

Item = ShipBatchItem.Result
RETRY_DELAYS = (30, 120, 600)  # seconds before the 2nd, 3rd and 4th run of a batch with retries
WAYBILL_THREADS = 8  # waybill calls in flight at once (the carrier's answer time dominates)
MAX_BATCH = 20_000
RUN_LEASE = timedelta(minutes=15)  # a run older than this is a worker that died: the next run takes over
PROGRESS_EVERY = 100  # parcels shipped between two updates of the batch's counts
PARCEL_CHUNK = 500  # parcels made (and their waybills written) per transaction
SHIP_CHUNK = 200  # orders shipped per transaction (whole parcels)


def fulfilment_settings(merchant_id: int) -> FulfilmentSettings:
    """The merchant's fulfilment settings, made with the defaults when first asked for."""
    found, _created = FulfilmentSettings.objects.get_or_create(merchant_id=merchant_id)
    return found


def new_parcel_code() -> str:
    """``P`` + the date + 10 hex characters: unique in practice, checked by the constraint."""
    return f"P{timezone.localdate():%y%m%d}{secrets.token_hex(5).upper()}"


# --- creating a batch -------------------------------------------------------------------------


def batch_create(
    *,
    merchant_id: int,
    actor: str,
    orders: Sequence[str] | None = None,
    session_id: int | None = None,
    status: str = OrderStatus.CONFIRMED,
    account_id: int | None = None,
) -> ShipBatch:
    """Freeze a selection into a batch and queue its run. Either ``orders`` (public ids, all of
    this merchant's and confirmed) or ``session_id`` (every order of the show in ``status``,
    which must be ``confirmed``). Checked before anything is written: an unknown order, one not
    confirmed, one in a batch still running, no carrier account or nothing to ship is a coded
    error with nothing written."""
    if (orders is None) == (session_id is None):
        raise ApplicationError(_("Give either orders or a show."), code="invalid")
    if status != OrderStatus.CONFIRMED:
        raise ApplicationError(_("Only confirmed orders can be shipped."), code="invalid", extra={"field": "status"})
    account = _batch_account(merchant_id, account_id)
    if orders is not None:
        wanted = list(dict.fromkeys(orders))
        if len(wanted) > MAX_BATCH:
            raise ApplicationError(
                _("At most %(n)d orders in one batch.") % {"n": MAX_BATCH},
                code="batch_too_large",
                extra={"max": MAX_BATCH},
            )
        found = {
            public_id: (pk, status)
            for public_id, pk, status in Order.objects.filter(
                merchant_id=merchant_id, public_id__in=wanted
            ).values_list("public_id", "pk", "status")
        }
        unknown = [p for p in wanted if p not in found]
        if unknown:
            raise ApplicationError(
                _("Some orders do not exist."), code="unknown_orders", extra={"orders": unknown[:100]}
            )
        not_confirmed = [p for p in wanted if found[p][1] != OrderStatus.CONFIRMED]
        if not_confirmed:
            raise Conflict(
                _("Only confirmed orders can be shipped."),
                code="not_confirmed",
                extra={"orders": not_confirmed[:100]},
            )
        selection: dict[str, Any] = {"orders": wanted}
        ids = [found[p][0] for p in wanted]
    else:
        ids = list(
            Order.objects.filter(merchant_id=merchant_id, session_id=session_id, status=status)
            .order_by("pk")
            .values_list("pk", flat=True)[: MAX_BATCH + 1]
        )
        if len(ids) > MAX_BATCH:
            raise ApplicationError(
                _("At most %(n)d orders in one batch.") % {"n": MAX_BATCH},
                code="batch_too_large",
                extra={"max": MAX_BATCH},
            )
        selection = {"session": session_id, "status": status}
    if not ids:
        raise ApplicationError(_("There is nothing to ship."), code="nothing_to_ship")
    with transaction.atomic():
        busy = list(
            ShipBatchItem.objects.filter(
                order_id__in=ids,
                result__in=(Item.PENDING, Item.RETRY),
                batch__status__in=(ShipBatch.Status.QUEUED, ShipBatch.Status.RUNNING, ShipBatch.Status.RETRYING),
            )
            .values_list("order__public_id", flat=True)
            .distinct()[:100]
        )
        if busy:
            raise Conflict(
                _("Some orders are in a batch that is still running."),
                code="already_in_batch",
                extra={"orders": busy},
            )
        batch = ShipBatch.objects.create(
            merchant_id=merchant_id, account=account, created_by=actor[:150], selection=selection, total=len(ids)
        )
        ShipBatchItem.objects.bulk_create([ShipBatchItem(batch=batch, order_id=pk) for pk in ids], batch_size=2000)
        transaction.on_commit(lambda: batch_enqueue(batch.pk))
    return batch


def _batch_account(merchant_id: int, account_id: int | None) -> CarrierAccount:
    if account_id is not None:
        account = CarrierAccount.objects.filter(merchant_id=merchant_id, pk=account_id, enabled=True).first()
        if account is None:
            raise NotFound(_("No enabled carrier account with this id."))
        return account
    default = account_default(merchant_id=merchant_id)
    if default is None:
        raise Conflict(
            _("Set up a carrier account (and make it the default) before shipping."), code="no_carrier_account"
        )
    return default


def batch_enqueue(batch_id: int, *, delay_seconds: int = 0) -> None:
    """Run the batch in the worker (at once, or after ``delay_seconds`` through a one-off schedule)."""
    from django_q.models import Schedule
    from django_q.tasks import async_task

    if delay_seconds <= 0:
        async_task("apps.fulfilment.tasks.ship_batch", batch_id, q_options={"task_name": f"ship batch {batch_id}"})
        return
    Schedule.objects.create(
        name=f"ship batch {batch_id} retry {secrets.token_hex(3)}",
        func="apps.fulfilment.tasks.ship_batch",
        args=str(batch_id),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=timezone.now() + timedelta(seconds=delay_seconds),
    )


# --- running it -------------------------------------------------------------------------------


@dataclass
class _Work:
    """One run's view of an order."""

    item: ShipBatchItem
    order: Order

    @property
    def public_id(self) -> str:
        return self.order.public_id


def batch_run(batch_id: int, *, enqueue_retry: bool = True) -> ShipBatch:
    """Run a batch (see the module docstring). Returns the batch as it ended this run."""
    with transaction.atomic():
        batch = ShipBatch.objects.select_for_update().select_related("account").get(pk=batch_id)
        if batch.status in (ShipBatch.Status.DONE, ShipBatch.Status.FAILED):
            return batch
        now = timezone.now()
        if batch.status == ShipBatch.Status.RUNNING and batch.running_since and now - batch.running_since < RUN_LEASE:
            return batch  # another worker runs it (a task delivered twice): one run at a time
        batch.status = ShipBatch.Status.RUNNING
        batch.attempts += 1
        batch.running_since = now
        batch.save(update_fields=["status", "attempts", "running_since"])
    try:
        _run(batch)
    except Exception as exc:
        log.exception("ship batch failed", extra={"batch": batch_id})
        ShipBatch.objects.filter(pk=batch_id).update(
            status=ShipBatch.Status.FAILED, error=str(exc)[:300], finished_at=timezone.now()
        )
        raise
    return _finish(batch, enqueue_retry=enqueue_retry)


ORDER_FIELDS = ("public_id", "merchant", "status", "shipping_address", "channel", "buyer", "session", "paid_at",
                "created_at")  # fmt: skip
"""What a run reads of an order (a batch of ten thousand loads them all at once)."""


def _open_items(batch: ShipBatch) -> list[_Work]:
    lines = OrderLine.objects.select_related("sku__product").only(
        "order", "quantity", "reserved", "sku__name", "sku__color", "sku__size", "sku__product__name"
    )
    items = (
        ShipBatchItem.objects.filter(batch=batch, result__in=(Item.PENDING, Item.RETRY))
        .select_related("order")
        .only("batch", "parcel", "result", "code", "message", "order", *(f"order__{f}" for f in ORDER_FIELDS))
        .prefetch_related(Prefetch("order__lines", queryset=lines))
        .order_by("pk")
    )
    return [_Work(item=item, order=item.order) for item in items]


def _run(batch: ShipBatch) -> None:
    work = _open_items(batch)
    if not work:
        return
    account = batch.account
    conf = fulfilment_settings(batch.merchant_id)
    shippable = _screen(batch, work)
    _count(batch)
    parcels = _parcels_for(batch, account, conf, shippable)
    _allocate_waybills(batch, account, parcels)
    _count(batch)
    _ship(batch, parcels)


def _count(batch: ShipBatch) -> dict[str, int]:
    """Write the batch's shipped and failed counts as its items say now (the progress its page and
    the API show while it runs)."""
    counts = dict(
        ShipBatchItem.objects.filter(batch=batch).values("result").annotate(n=Count("pk")).values_list("result", "n")
    )
    ShipBatch.objects.filter(pk=batch.pk).update(shipped=counts.get(Item.SHIPPED, 0), failed=counts.get(Item.FAILED, 0))
    return counts


def _fail(batch: ShipBatch, works: Iterable[_Work], *, outcome: str, message: str, kind: str | None) -> None:
    works = list(works)
    if not works:
        return
    ShipBatchItem.objects.filter(pk__in=[w.item.pk for w in works]).update(
        result=Item.FAILED, code=outcome, message=message[:300]
    )
    if kind is not None:
        for w in works:
            exception_open(order=w.order, kind=kind, detail=message)


def _skip(works: Iterable[_Work], *, outcome: str, message: str) -> None:
    ShipBatchItem.objects.filter(pk__in=[w.item.pk for w in works]).update(
        result=Item.SKIPPED, code=outcome, message=message[:300]
    )


ADDRESS_FIELDS = ("name", "phone", "province", "city", "district", "detail")


def address_problem(address: dict[str, Any]) -> str | None:
    """What is wrong with a shipping address for a waybill (None: nothing)."""
    if not isinstance(address, dict):
        return _("no address")
    missing = [f for f in ADDRESS_FIELDS if not str(address.get(f) or "").strip()]
    if missing:
        return _("missing: %(fields)s") % {"fields": ", ".join(missing)}
    if normalize_phone(str(address.get("phone"))) is None:
        return _("the phone number is not valid")
    return None


def _screen(batch: ShipBatch, work: list[_Work]) -> list[_Work]:
    """The orders that can go to a carrier; the rest skipped (no longer confirmed) or failed into
    the exception queue (bad address, a line with no stock)."""
    ok: list[_Work] = []
    not_confirmed: list[_Work] = []
    already: list[_Work] = []
    for w in work:
        if w.order.status == OrderStatus.CONFIRMED:
            problem = address_problem(w.order.shipping_address)
            if problem:
                _fail(batch, [w], outcome="bad_address", message=problem, kind=ExceptionKind.BAD_ADDRESS)
            elif any(not line.reserved for line in w.order.lines.all()):
                _fail(
                    batch,
                    [w],
                    outcome="stock_short",
                    message=_("a line holds no stock (oversold on a platform)"),
                    kind=ExceptionKind.STOCK_SHORT,
                )
            else:
                ok.append(w)
        elif w.order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED):
            already.append(w)
        else:
            not_confirmed.append(w)
    if already:  # shipped by an earlier run of this batch (it stopped before writing the item)
        members = dict(
            ParcelOrder.objects.filter(order_id__in=[w.order.pk for w in already]).values_list("order_id", "parcel_id")
        )
        for w in already:
            ShipBatchItem.objects.filter(pk=w.item.pk).update(
                result=Item.SHIPPED if w.order.pk in members else Item.SKIPPED,
                parcel_id=members.get(w.order.pk),
                code="" if w.order.pk in members else "already_shipped",
            )
    if not_confirmed:
        _skip(not_confirmed, outcome="not_confirmed", message=_("the order is no longer confirmed"))
    return ok


def _merge_key(order: Order) -> tuple[str, int, str]:
    channel = order.channel if order.channel in PLATFORM_CHANNELS else "own"
    return channel, order.buyer_id, normalise_address(order.shipping_address)


def _receiver(address: dict[str, Any]) -> dict[str, str]:
    return {f: str(address.get(f) or "").strip() for f in ADDRESS_FIELDS}


_Run = tuple[str, str, list["_Work"]]  # a parcel to make: channel, address key, its orders


@dataclass
class _Parcel:
    parcel: Parcel
    works: list[_Work]


def _parcels_for(
    batch: ShipBatch, account: CarrierAccount, conf: FulfilmentSettings, work: list[_Work]
) -> list[_Parcel]:
    """Each order's parcel: the one an earlier run made, else a new one shared by the orders of one
    buyer to one address (one platform, or our own channels) from one show or paid within the
    merge window."""
    existing = {
        m.order_id: m.parcel
        for m in ParcelOrder.objects.filter(order_id__in=[w.order.pk for w in work]).select_related("parcel")
    }
    by_parcel: dict[int, _Parcel] = {}
    fresh: list[_Work] = []
    for w in work:
        parcel = existing.get(w.order.pk)
        if parcel is None:
            fresh.append(w)
        else:
            if not parcel.waybill_no and parcel.pk not in by_parcel:
                # no waybill yet (the carrier refused or was down): the address may have been fixed since
                parcel.receiver = _receiver(w.order.shipping_address)
                Parcel.objects.filter(pk=parcel.pk).update(receiver=parcel.receiver)
            by_parcel.setdefault(parcel.pk, _Parcel(parcel, [])).works.append(w)
    window = timedelta(hours=conf.merge_within_hours)
    groups: dict[tuple[str, int, str], list[list[_Work]]] = defaultdict(list)
    for w in sorted(fresh, key=lambda w: (w.order.paid_at or w.order.created_at, w.order.pk)):
        runs = groups[_merge_key(w.order)]
        for run in runs:
            first = run[0].order
            same_show = first.session_id is not None and first.session_id == w.order.session_id
            paid, first_paid = (w.order.paid_at or w.order.created_at), (first.paid_at or first.created_at)
            if same_show or (window and paid - first_paid <= window):
                run.append(w)
                break
        else:
            runs.append([w])
    wanted = [(channel, key, run) for (channel, _buyer, key), runs in groups.items() for run in runs]
    return [*by_parcel.values(), *_new_parcels(batch, account, wanted)]


def _new_parcels(batch: ShipBatch, account: CarrierAccount, wanted: list[_Run]) -> list[_Parcel]:
    """A new parcel for each (channel, address key, orders): ``PARCEL_CHUNK`` parcels per
    transaction, each written in a few statements (the parcels, their orders, the items' parcel).
    A chunk that hits a constraint (a parcel code drawn twice, or orders another run parcelled
    meanwhile) is rolled back and made again parcel by parcel (``_new_parcel`` tells the two apart)."""
    made: list[_Parcel] = []
    bulk = connection.features.can_return_rows_from_bulk_insert
    for start in range(0, len(wanted), PARCEL_CHUNK):
        chunk = wanted[start : start + PARCEL_CHUNK]
        if bulk:
            try:
                made += _new_parcels_at_once(batch, account, chunk)
                continue
            except IntegrityError:
                pass
        made += [_new_parcel(batch, account, channel, key, run) for channel, key, run in chunk]
    return made


@transaction.atomic
def _new_parcels_at_once(batch: ShipBatch, account: CarrierAccount, chunk: list[_Run]) -> list[_Parcel]:
    parcels = Parcel.objects.bulk_create(
        [
            Parcel(
                merchant_id=batch.merchant_id,
                code=new_parcel_code(),
                account=account,
                express=account.express,
                channel=channel,
                address_key=key[:300],
                receiver=_receiver(run[0].order.shipping_address),
            )
            for channel, key, run in chunk
        ]
    )
    made = [_Parcel(parcel, run) for parcel, (_channel, _key, run) in zip(parcels, chunk, strict=True)]
    ParcelOrder.objects.bulk_create([ParcelOrder(parcel=p.parcel, order=w.order) for p in made for w in p.works])
    items = []
    for p in made:
        for w in p.works:
            w.item.parcel = p.parcel
            items.append(w.item)
    update_rows(ShipBatchItem, items, ["parcel"])
    return made


def _new_parcel(batch: ShipBatch, account: CarrierAccount, channel: str, key: str, run: list[_Work]) -> _Parcel:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                parcel = Parcel.objects.create(
                    merchant_id=batch.merchant_id,
                    code=new_parcel_code(),
                    account=account,
                    express=account.express,
                    channel=channel,
                    address_key=key[:300],
                    receiver=_receiver(run[0].order.shipping_address),
                )
                ParcelOrder.objects.bulk_create([ParcelOrder(parcel=parcel, order=w.order) for w in run])
                ShipBatchItem.objects.filter(pk__in=[w.item.pk for w in run]).update(parcel=parcel)
            return _Parcel(parcel, run)
        except IntegrityError:
            if ParcelOrder.objects.filter(order_id__in=[w.order.pk for w in run]).exists():
                raise  # another run parcelled these orders at the same time: this run stops here
            continue  # a parcel code drawn twice: draw again
    raise RuntimeError("no free parcel code after 5 tries")


def _goods(works: list[_Work]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = defaultdict(int)
    for w in works:
        for line in w.order.lines.all():
            name = line.sku.product.name
            variant = " ".join(v for v in (line.sku.name, line.sku.color, line.sku.size) if v)
            counts[f"{name} {variant}".strip()] += line.quantity
    return tuple(counts.items())


def waybill_request(account: CarrierAccount, p: _Parcel, callback_url: str | None) -> WaybillRequest:
    r = p.parcel.receiver
    return WaybillRequest(
        order_code=p.parcel.code,
        express=p.parcel.express,
        sender=account.sender,
        receiver=Party(
            name=r["name"],
            mobile=r["phone"],
            province=r["province"],
            city=r["city"],
            district=r["district"],
            detail=r["detail"],
        ),
        items=_goods(p.works),
        callback_url=callback_url,
    )


def _allocate_waybills(batch: ShipBatch, account: CarrierAccount, parcels: list[_Parcel]) -> None:
    """A waybill for every parcel that has none, several calls in flight at once. A refusal fails
    the parcel's orders; an outage or timeout leaves them to retry."""
    todo = [p for p in parcels if not p.parcel.waybill_no]
    if not todo:
        return
    callback = account_push_url(account) if settings.PUBLIC_BASE_URL else None
    requests = [waybill_request(account, p, callback) for p in todo]
    client = cast(CarrierClient, account.client())

    def call(req: WaybillRequest) -> Waybill | CarrierError:
        try:
            return client.create_waybill(req)
        except CarrierError as exc:
            return exc

    try:
        with ThreadPoolExecutor(max_workers=min(WAYBILL_THREADS, len(todo))) as pool:
            answers = list(pool.map(call, requests))
    finally:
        client.close()
    drawn: list[Parcel] = []
    for p, answer in zip(todo, answers, strict=True):
        if isinstance(answer, Waybill):
            p.parcel.waybill_no, p.parcel.routing_code = answer.waybill_no, answer.routing_code[:64]
            p.parcel.dest_code, p.parcel.status = answer.dest_code[:64], Parcel.Status.WAYBILL
            p.parcel.subscribed = callback is not None  # both carriers subscribe a waybill drawn with a callback
            drawn.append(p.parcel)
        elif isinstance(answer, CarrierRejected) or not answer.retryable:
            _fail(
                batch,
                p.works,
                outcome="carrier_rejected",
                message=f"{answer.code}: {answer.message}",
                kind=ExceptionKind.CARRIER_REJECTED,
            )
            p.works.clear()
        else:
            ShipBatchItem.objects.filter(pk__in=[w.item.pk for w in p.works]).update(
                result=Item.RETRY, code=answer.code[:64], message=answer.message[:300]
            )
            p.works.clear()
    update_rows(
        Parcel, drawn, ["waybill_no", "routing_code", "dest_code", "subscribed"], same={"status": Parcel.Status.WAYBILL}
    )


def _ship(batch: ShipBatch, parcels: list[_Parcel]) -> None:
    """``confirmed -> shipped`` for every order of every parcel that has its waybill, whole parcels
    of about ``SHIP_CHUNK`` orders per transaction (a parcel ships whole or not at all), through
    ``orders_transition_many``: an order no longer confirmed is skipped and taken out of its
    parcel, the others ship."""
    ready = [p for p in parcels if p.works and p.parcel.waybill_no]
    since_count = 0
    chunk: list[_Parcel] = []
    size = 0
    for n, p in enumerate(ready, start=1):
        chunk.append(p)
        size += len(p.works)
        if size >= SHIP_CHUNK or n == len(ready):
            _ship_chunk(batch, chunk)
            since_count += len(chunk)
            chunk, size = [], 0
            if since_count >= PROGRESS_EVERY and n < len(ready):
                _count(batch)
                since_count = 0


@transaction.atomic
def _ship_chunk(batch: ShipBatch, chunk: list[_Parcel]) -> None:
    items: list[TransitionItem] = []
    for p in chunk:
        express = EXPRESS.get(p.parcel.express, {}).get("name", p.parcel.express)
        for w in p.works:
            items.append(
                TransitionItem(
                    pk=w.order.pk,
                    reason=f"{express} {p.parcel.waybill_no}",
                    carrier=express,
                    tracking_number=p.parcel.waybill_no,
                )
            )
    done = orders_transition_many(
        merchant_id=batch.merchant_id,
        items=items,
        to=OrderStatus.SHIPPED,
        actor=f"ship batch #{batch.pk}",
        allowed_from=(OrderStatus.CONFIRMED,),
    )
    for error in done.refused.values():
        if not isinstance(error, InvalidTransition):
            raise error  # an order of the batch that is not the merchant's: never skipped quietly
    shipped = [w for p in chunk for w in p.works if w.order.pk not in done.refused]
    skipped = [w for p in chunk for w in p.works if w.order.pk in done.refused]
    went = [p.parcel.pk for p in chunk if any(w.order.pk not in done.refused for w in p.works)]
    if went:
        Parcel.objects.filter(pk__in=went, status=Parcel.Status.WAYBILL).update(
            status=Parcel.Status.SHIPPED, shipped_at=timezone.now()
        )
    if shipped:
        ShipBatchItem.objects.filter(pk__in=[w.item.pk for w in shipped]).update(
            result=Item.SHIPPED, code="", message=""
        )
    if skipped:
        _skip(skipped, outcome="not_confirmed", message=_("the order is no longer confirmed"))
        ParcelOrder.objects.filter(order_id__in=[w.order.pk for w in skipped]).delete()


def _finish(batch: ShipBatch, *, enqueue_retry: bool) -> ShipBatch:
    counts = _count(batch)
    retry = counts.get(Item.RETRY, 0) + counts.get(Item.PENDING, 0)
    update: dict[str, Any] = {
        "shipped": counts.get(Item.SHIPPED, 0),
        "failed": counts.get(Item.FAILED, 0),
    }
    if retry and batch.attempts <= len(RETRY_DELAYS):
        update["status"] = ShipBatch.Status.RETRYING
        update["running_since"] = None
        ShipBatch.objects.filter(pk=batch.pk).update(**update)
        if enqueue_retry:
            delay = RETRY_DELAYS[batch.attempts - 1]
            transaction.on_commit(lambda: batch_enqueue(batch.pk, delay_seconds=delay))
    else:
        if retry:  # the carrier never came back: these orders wait in the exception queue
            stuck = ShipBatchItem.objects.filter(batch=batch, result__in=(Item.RETRY, Item.PENDING)).select_related(
                "order"
            )
            for item in stuck:
                exception_open(
                    order=item.order,
                    kind=ExceptionKind.CARRIER_REJECTED,
                    detail=_("the carrier did not answer after %(n)d runs: %(why)s")
                    % {"n": batch.attempts, "why": item.message or item.code},
                )
            stuck.update(result=Item.FAILED)
            update["failed"] = update["failed"] + retry
        _documents(batch)  # before "done": a batch page that sees "done" finds its files
        update["status"] = ShipBatch.Status.DONE
        update["finished_at"] = timezone.now()
        update["running_since"] = None
        ShipBatch.objects.filter(pk=batch.pk).update(**update)
    batch.refresh_from_db()
    return batch


def _documents(batch: ShipBatch) -> None:
    """The batch's labels and picking list (``documents``), once every order has its outcome."""
    from .batch_documents import write_batch_documents

    write_batch_documents(batch)


# --- the exception queue ----------------------------------------------------------------------


def exception_open(*, order: Order, kind: str, detail: str = "", parcel: Parcel | None = None) -> None:
    """Put an order in the exception queue for ``kind`` (once: an open one is kept)."""
    try:
        with transaction.atomic():
            FulfilmentException.objects.create(
                merchant_id=order.merchant_id, order=order, kind=kind, detail=detail[:300], parcel=parcel
            )
    except IntegrityError:
        pass  # open already


def exception_resolve(*, exceptions: QuerySet[FulfilmentException], actor: str, resolution: str) -> int:
    return exceptions.filter(resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=actor[:150], resolution=resolution[:300]
    )


def parcels_of_batch(batch: ShipBatch) -> QuerySet[Parcel]:
    return Parcel.objects.filter(
        pk__in=ShipBatchItem.objects.filter(batch=batch, result=Item.SHIPPED).values("parcel_id")
    ).order_by("pk")
