"""Generated history: months of past live shows and their orders for one merchant, made up but
shaped like the real thing, for the demo, the tests and the benchmarks (issue 14).

``history_generate(merchant=..., params=HistoryParams(orders=N, shows=M, weeks=W, seed=S))``
writes, in one transaction:

- a catalogue, made once per merchant and reused by later runs (SKU codes ``HIST-...``):
  products with a ``category`` (美妆, 服饰, 食品, 家居, 数码, 母婴), their SKUs with list prices and
  stock rows, created through the catalog's services (a ``receive`` movement each);
- ``M`` ended shows over the last ``W`` weeks, marked ``LiveSession.generated``. Start times are
  drawn over every (day, hour) of the period with the weekday × hour seasonality of
  ``history_tables.slot_weight`` (evenings and weekends strong); each show has a streamer (some
  sell far more than others, and better in their own categories), a length, the platforms it
  sold on, and 3-12 closed listings (a SKU at a flash price, a quota, a buyer limit, a window);
- ``N`` orders, shared out over the shows by slot × streamer × length (exactly ``N``), and inside
  a show over its listings by appeal. Inside a listing's window most orders come in the first
  minutes (a sell-out curve), the rest trickle in. Orders come from ``storefront``, ``api`` and the
  platforms the show sold on; platform buyers are the platform's (``douyin:...``). Buyers come
  from a pool: about a third of the orders are buyers from earlier shows (repeat buyers),
  shipping to their own address across China's provinces (weighted: 广东, 浙江, 江苏 ...).

A listing's quota is never below the units ordered from it (no oversell, even made up), a
storefront/API buyer never goes over the listing's per-buyer limit, and ``Listing.sold`` and the
``ListingBuyer`` rows hold exactly the units of the orders that kept them (as the order code
keeps them). Deterministic: the same seed, period end and parameters give the same shows,
listings and orders (order numbers and database ids aside).

What the history is, and why nothing that runs on its own acts on it
--------------------------------------------------------------------
Every order is in a state nothing automatic moves: ``completed``, ``delivered`` or ``shipped``
(which one follows from the show's age: shipped a day or two after payment, delivered days
later, completed a week after delivery), ``cancelled`` (unpaid past the deadline: reason
``payment deadline passed``; or by the buyer before paying), or ``refunded`` with
``refunded == refund_due == total`` (settled). So: the expiry sweep finds no ``pending_payment``,
auto-confirm no ``paid``, auto-complete and the no-movement check no parcel (history has none),
the refund sweep nothing owed (``refund_due > refunded`` never holds), risk scoring no
``OrderSignals`` (it scores orders placed with their signals only; history has none, like
orders from before risk control), the platform sweeps no ``PlatformOrder``. Payments, parcels,
refund requests and stock movements of the orders are not written: the stock rows are the stock
left after the history (``on_hand``, nothing reserved).

**No ledger events.** The ledger is per merchant, hash-chained, checkpointed outside the
database, and deleting events from it is tampering by design: history in it could never be
replaced (``--replace``) without breaking the chain, and a million made-up orders would add
millions of links that prove nothing. Generated orders therefore carry no events, and the
ledger check skips an order that has no event at all when its show is marked generated
(``orders.services.ledger._status_problems``). An order that does get an event later (a person
acted on it) is checked like any other, and ``history_delete`` refuses to delete it.

Speed: rows go in a show at a time with ``core.bulk.insert_rows`` (``COPY`` on PostgreSQL,
multi-row ``INSERT ... RETURNING`` on SQLite; the history's own times in ``created_at`` /
``updated_at``): no service call and no query per order; memory is one show's orders and the
buyer pool. What is drawn (shows, listings, orders, buyers) is in ``history_draw``, from the
tables of ``history_tables``; this module writes it. Figures: ``docs/performance.md``.
"""

from __future__ import annotations

import random
import secrets
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models import Exists, Model, OuterRef, ProtectedError, QuerySet, RestrictedError
from django.utils import timezone

from apps.catalog import services as catalog
from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.core.bulk import INSERT_BATCH, insert_rows
from apps.merchants.models import Merchant
from apps.orders.models import (
    PLATFORM_CHANNELS,
    Buyer,
    ListingBuyer,
    ListingTally,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
)

from . import history_tables as t
from .errors import HistoryError
from .history_draw import (
    OWN,
    PAY_WINDOW,
    DrawnListing,
    DrawnOrder,
    Pool,
    Show,
    Sku,
    person,
    schedule,
    show_listings,
    show_orders,
)

S = OrderStatus
MAX_ORDERS = 20_000_000
MAX_WEEKS = 520


@dataclass(frozen=True)
class HistoryParams:
    """What to generate. ``end``: the history happens before it (default: now)."""

    orders: int
    shows: int
    weeks: int = 12
    seed: int = 0
    end: datetime | None = None
    batch_size: int = INSERT_BATCH

    def check(self) -> None:
        """Raise HistoryError for parameters no history can have (before anything is written)."""
        if not 0 <= self.orders <= MAX_ORDERS:
            raise HistoryError(f"orders must be within 0..{MAX_ORDERS:,} (got {self.orders})")
        if self.shows < 1:
            raise HistoryError(f"shows must be at least 1 (got {self.shows})")
        if not 1 <= self.weeks <= MAX_WEEKS:
            raise HistoryError(f"weeks must be within 1..{MAX_WEEKS} (got {self.weeks})")
        if self.shows > self.weeks * 7 * len(t.HOUR_WEIGHT):
            raise HistoryError(
                f"{self.shows} shows do not fit in {self.weeks} weeks (one show an hour at most, "
                f"{len(t.HOUR_WEIGHT)} hours a day)",
            )
        if not 100 <= self.batch_size <= 100_000:
            raise HistoryError("batch_size must be within 100..100,000")
        if self.end is not None and timezone.is_naive(self.end):
            raise HistoryError("end must carry its time zone")


@dataclass
class HistoryResult:
    merchant_id: int
    shows: int = 0
    listings: int = 0
    orders: int = 0
    lines: int = 0
    buyers_new: int = 0
    products_new: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    first_show: datetime | None = None
    last_show: datetime | None = None
    seconds: float = 0.0


@dataclass
class DeleteResult:
    shows: int = 0
    orders: int = 0
    buyers: int = 0


# --- the catalogue -------------------------------------------------------------------------------
def _catalogue(merchant: Merchant, listed_at: datetime) -> tuple[list[Sku], int]:
    """The merchant's generated catalogue, made where missing (a few dozen service calls, once,
    dated ``listed_at``: before the history). Returns its SKUs and how many products were made."""
    wanted: dict[str, tuple[t.Category, int, t.Item, t.Variant]] = {}
    for cat in t.CATALOGUE:
        for p, item in enumerate(cat.items, start=1):
            for v, variant in enumerate(item.variants):
                wanted[f"{t.SKU_PREFIX}{cat.code}-{p:02d}-{chr(65 + v)}"] = (cat, p, item, variant)
    have = {
        code: (pk, product_id)
        for code, pk, product_id in SKU.objects.filter(merchant=merchant, code__in=list(wanted)).values_list(
            "code", "pk", "product_id"
        )
    }
    existing = Product.objects.in_bulk({product_id for _pk, product_id in have.values()})
    products: dict[tuple[str, int], Product] = {}
    for code, (_pk, product_id) in have.items():
        cat, p, _item, _variant = wanted[code]
        products.setdefault((cat.code, p), existing[product_id])
    made = 0
    made_skus: list[int] = []
    rng = random.Random(f"catalogue:{merchant.pk}")
    out: list[Sku] = []
    for code, (cat, p, item, variant) in wanted.items():
        on_hand = rng.randrange(200, 3000)
        found = have.get(code)
        if found is None:
            product = products.get((cat.code, p))
            if product is None:
                product = products[(cat.code, p)] = catalog.product_create(
                    merchant=merchant, name=item.name, description=item.description, category=cat.name
                )
                made += 1
            sku = catalog.sku_create(
                merchant=merchant,
                product=product,
                code=code,
                name=variant.name,
                price=Decimal(variant.price),
                on_hand=on_hand,
                color=variant.color,
                size=variant.size,
            )
            found = (sku.pk, product.pk)
            made_skus.append(sku.pk)
        out.append(Sku(pk=found[0], category=cat.name, appeal=item.appeal, price=Decimal(variant.price)))
    if made_skus:
        SKU.objects.filter(pk__in=made_skus).update(created_at=listed_at)
        Product.objects.filter(skus__pk__in=made_skus).update(created_at=listed_at)
    return out, made


def _write_buyers(merchant_id: int, seed: int, pools: dict[str, Pool], batch: int) -> int:
    """The database ids of the buyers first seen in this show: existing rows (an earlier run with
    the same seed made them) are found, one query per chunk; the rest inserted. Returns how many
    were made."""
    made = 0
    for pool in pools.values():
        for start in range(0, len(pool.new), batch):
            chunk = pool.new[start : start + batch]
            ids = {pool.external_id(n): n for n, _at in chunk}
            found = Buyer.objects.filter(merchant_id=merchant_id, external_id__in=list(ids)).values_list(
                "external_id", "pk"
            )
            for ext, pk in found:
                pool.pk[ids.pop(ext)] = pk
            rows = []
            missing = [(n, at) for n, at in chunk if pool.external_id(n) in ids]
            for n, at in missing:
                name, phone, _address = person(seed, pool.space, n)
                rows.append((merchant_id, pool.external_id(n), name, phone, at))
            pks = insert_rows(Buyer, ("merchant", "external_id", "name", "phone", "created_at"), rows, batch_size=batch)
            for (n, _at), pk in zip(missing, pks, strict=True):
                pool.pk[n] = pk
            made += len(pks)
    return made


ORDER_FIELDS = tuple(
    "merchant public_id session listing buyer channel status total currency pay_by shipping_address "
    "idempotency_key request_hash version cancel_reason refund_due refunded paid_at carrier tracking_number "
    "created_at updated_at".split()
)
SESSION_FIELDS = tuple(
    "merchant title streamer platforms scheduled_at started_at ended_at status generated created_at".split()
)
LISTING_FIELDS = tuple(
    "merchant session sku price quota sold per_buyer_limit payment_window_seconds opens_at closes_at status "
    "version parent channel created_at".split()
)
LINE_FIELDS = ("order", "listing", "sku", "quantity", "unit_price", "line_total", "reserved")
KEPT = frozenset({S.SHIPPED, S.DELIVERED, S.COMPLETED})
ZERO = Decimal("0.00")


def _write_show(
    merchant_id: int,
    show: Show,
    listings: list[DrawnListing],
    orders: list[DrawnOrder],
    pools: dict[str, Pool],
    seed: int,
    batch: int,
    result: HistoryResult,
) -> None:
    """Insert the show, its listings, its new buyers, its orders with their lines, and the
    listings' per-buyer rows. A fixed number of statements per show and per ``batch`` rows."""
    started = max(show.start, min(li.opens for li in listings) - timedelta(seconds=30))
    ended = show.start + timedelta(minutes=show.minutes)
    created = show.start - timedelta(days=3)
    (session_id,) = insert_rows(
        LiveSession,
        SESSION_FIELDS,
        [
            (
                merchant_id,
                show.title,
                show.streamer.name,
                show.platforms,
                show.start,
                started,
                ended,
                LiveSession.Status.ENDED,
                True,
                created,
            )
        ],
    )
    pks = insert_rows(
        Listing,
        LISTING_FIELDS,
        [
            (
                merchant_id,
                session_id,
                li.sku.pk,
                li.price,
                li.quota,
                li.sold,
                li.limit,
                PAY_WINDOW,
                li.opens,
                li.closes,
                Listing.Status.CLOSED,
                3 + li.units,
                None,
                "",
                created + timedelta(minutes=10),
            )
            for li in listings
        ],
    )
    for li, pk in zip(listings, pks, strict=True):
        li.pk = pk
    result.buyers_new += _write_buyers(merchant_id, seed, pools, batch)
    statuses = result.statuses
    for start in range(0, len(orders), batch):
        chunk = orders[start : start + batch]
        rows = []
        line_specs: list[list[tuple[DrawnListing, bool]]] = []
        for o in chunk:
            li = listings[o.listing]
            lines = [(li, True)]
            total = li.price * o.quantity
            if o.second is not None:
                lines.append((listings[o.second], False))
                total += listings[o.second].price
            line_specs.append(lines)
            pool = pools[o.space]
            _name, _phone, address = person(seed, o.space, o.buyer)
            refund = total if o.status == S.REFUNDED else ZERO
            own = o.space == OWN
            rows.append(
                (
                    merchant_id,
                    "o" + secrets.token_hex(12),
                    session_id,
                    li.pk,
                    pool.pk[o.buyer],
                    o.channel,
                    o.status,
                    total,
                    "CNY",
                    o.created + timedelta(seconds=PAY_WINDOW) if own else None,
                    address,
                    None,
                    "",
                    o.version,
                    o.reason,
                    refund,
                    refund,
                    o.paid,
                    o.carrier,
                    o.tracking,
                    o.created,
                    o.updated,
                )
            )
            statuses[o.status] = statuses.get(o.status, 0) + 1
        order_pks = insert_rows(Order, ORDER_FIELDS, rows, batch_size=batch)
        line_rows = []
        for o, pk, lines in zip(chunk, order_pks, line_specs, strict=True):
            for li, first in lines:
                qty = o.quantity if first else 1
                # The second line of a platform order was sold off its listing's quota: no listing.
                line_rows.append((pk, li.pk if first else None, li.sku.pk, qty, li.price, li.price * qty, True))
        insert_rows(OrderLine, LINE_FIELDS, line_rows, batch_size=batch, returning=False)
        result.orders += len(chunk)
        result.lines += len(line_rows)
    held: dict[tuple[int, int], int] = {}
    for o in orders:
        if o.space == OWN and o.status in KEPT:
            key = (listings[o.listing].pk, pools[OWN].pk[o.buyer])
            held[key] = held.get(key, 0) + o.quantity
    insert_rows(
        ListingBuyer,
        ("listing", "buyer", "units"),
        [(lp, bp, units) for (lp, bp), units in sorted(held.items())],
        batch_size=batch,
        returning=False,
    )
    insert_rows(
        ListingTally,
        ("listing", "merchant", "accepted", "closed", "over_limit", "sold_out", "seq", "updated_at"),
        _tallies(merchant_id, show, listings, orders, seed, ended),
        batch_size=batch,
        returning=False,
    )
    result.shows += 1
    result.listings += len(listings)


def _tallies(
    merchant_id: int, show: Show, listings: list[DrawnListing], orders: list[DrawnOrder], seed: int, at: datetime
) -> list[tuple[Any, ...]]:
    """What the gate would have counted for each listing: a hold per order placed from it, and
    refusals: a sold-out listing turned away several times the orders it took (more the faster
    it went), a few buyers asked past their limit or before the listing opened."""
    rng = random.Random(f"history:{seed}:tally:{show.start.isoformat()}")
    accepted = [0] * len(listings)
    for o in orders:
        accepted[o.listing] += 1
    rows = []
    for li, n in zip(listings, accepted, strict=True):
        sold_out = round(n * rng.uniform(0.5, 6.0)) if li.sold_out else 0
        over_limit = sum(1 for _ in range(n) if rng.random() < 0.03)
        closed = sum(1 for _ in range(n) if rng.random() < 0.01)
        rows.append((li.pk, merchant_id, n, closed, over_limit, sold_out, 0, at))
    return rows


# --- the entry points ----------------------------------------------------------------------------
@transaction.atomic
def history_generate(
    *, merchant: Merchant, params: HistoryParams, progress: Callable[[HistoryResult], None] | None = None
) -> HistoryResult:
    """Generate ``params.shows`` past shows with ``params.orders`` orders for ``merchant`` (see
    the module docstring), in one transaction: a failure leaves nothing behind. Raises
    HistoryError for impossible parameters before writing anything. Without ``--replace``'s
    ``history_delete`` first, a second run adds more shows (the catalogue and, for the same seed,
    the buyers are shared). ``progress`` is called after each show."""
    params.check()
    began = clock.monotonic()
    end = (params.end or timezone.now()).replace(second=0, microsecond=0)
    rng = random.Random(f"history:{params.seed}")
    shows = schedule(orders=params.orders, shows=params.shows, weeks=params.weeks, end=end, rng=rng)
    skus, made = _catalogue(merchant, end - timedelta(weeks=params.weeks, days=14))
    result = HistoryResult(merchant_id=merchant.pk, products_new=made)
    pools = {space: Pool(space, params.seed) for space in (OWN, *PLATFORM_CHANNELS)}
    for n, show in enumerate(shows):
        show_rng = random.Random(f"history:{params.seed}:show:{n}")
        listings = show_listings(show, skus, show_rng)
        orders = show_orders(show, listings, pools, show_rng, end)
        _write_show(merchant.pk, show, listings, orders, pools, params.seed, params.batch_size, result)
        for pool in pools.values():
            pool.end_show()
        if settings.DEBUG:
            reset_queries()  # DEBUG keeps every statement's SQL: thousands of rows' worth each
        if progress is not None:
            progress(result)
    if shows:
        result.first_show, result.last_show = shows[0].start, shows[-1].start
    result.seconds = clock.monotonic() - began
    return result


def history_delete(*, merchant: Merchant, batch: int = INSERT_BATCH) -> DeleteResult:
    """Delete the merchant's generated history: its generated shows with their listings, orders,
    lines and per-buyer rows, and the buyers that have no order left. The catalogue stays (a
    later run reuses it). Set-based (a statement per table, a query per kind of record that may
    refer to the history), in one transaction. Raises HistoryError, deleting nothing, when an
    order of the history has ledger events (someone acted on it: it is on record now) or a record
    that must not go refers to it; records that belong to an order (a note, a flag) go with it."""
    with transaction.atomic():
        out = DeleteResult()
        sessions = LiveSession.objects.filter(merchant=merchant, generated=True)
        if not sessions.exists():
            return out
        orders = Order.objects.filter(merchant=merchant, session__in=sessions)
        n = OrderEvent.objects.filter(order__in=orders).values("order_id").distinct().count()
        if n:
            raise HistoryError(
                f"{n} order(s) of the generated history have ledger events (someone acted on them): "
                "they are on record now and are not deleted; nothing was deleted"
            )
        buyers = sorted(set(orders.values_list("buyer_id", flat=True).distinct()))
        try:
            _delete_rows(OrderLine.objects.filter(order__in=orders), handled=())
            _delete_rows(ListingBuyer.objects.filter(listing__session__in=sessions), handled=())
            _delete_rows(ListingTally.objects.filter(listing__session__in=sessions), handled=())
            out.orders = _delete_rows(orders, handled=(OrderLine,))
            listings = Listing.objects.filter(merchant=merchant, session__in=sessions)
            _delete_rows(listings, handled=(Order, OrderLine, ListingBuyer, ListingTally))
            out.shows = _delete_rows(sessions, handled=(Listing, Order))
            for start in range(0, len(buyers), batch):
                idle = Buyer.objects.filter(merchant=merchant, pk__in=buyers[start : start + batch]).exclude(
                    Exists(Order.objects.filter(buyer_id=OuterRef("pk")))
                )
                out.buyers += _delete_rows(idle, handled=(Order,))
        except (ProtectedError, RestrictedError) as exc:
            found = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
            kinds = sorted({str(obj._meta.verbose_name_plural) for obj in list(found)[:50]})
            raise HistoryError(
                f"the generated history is referred to by other records ({', '.join(kinds)}): nothing was deleted"
            ) from exc
    return out


def _delete_rows(qs: QuerySet[Any], *, handled: tuple[type[Model], ...]) -> int:
    """Delete the rows of ``qs`` in one statement. Rows some other record refers to (through a
    model not in ``handled``: the caller deleted those references already) go first through
    Django's delete, which applies the relations' rules: cascades go with them, a protected
    reference raises ProtectedError. One existence query per relation; returns the rows deleted."""
    model = qs.model
    meta = model._meta
    deleted = 0
    for rel in meta.related_objects:
        if rel.related_model in handled or not rel.field.concrete:
            continue
        refs = rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": qs.values("pk")})
        if refs.exists():
            deleted += qs.filter(pk__in=refs.values(rel.field.name)).delete()[1].get(meta.label, 0)
    sql, params = qs.values("pk").query.sql_with_params()
    qn = connection.ops.quote_name
    assert meta.pk is not None  # every concrete model has one
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} IN ({sql})", params)
        return deleted + cur.rowcount


def history_exists(*, merchant: Merchant) -> bool:
    return LiveSession.objects.filter(merchant=merchant, generated=True).exists()


__all__ = [
    "DeleteResult",
    "HistoryParams",
    "HistoryResult",
    "history_delete",
    "history_exists",
    "history_generate",
]
