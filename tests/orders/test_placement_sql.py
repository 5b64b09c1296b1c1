"""Guards on the PostgreSQL placement function: a model that gains a column the function does not
write must have a database default (else every order on PostgreSQL would fail), and the order the
engine answers with is exactly the row the database holds, field by field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection, models

from apps.inventory.models import StockMovement
from apps.orders.models import Buyer, ListingBuyer, Order, OrderEvent, OrderLine
from apps.orders.placement.engines.postgres import model_from_row
from apps.orders.placement.request import parse_order_request
from apps.orders.placement.service import order_place

from ..factories import make_listing, order_body

SQL = (Path(__file__).resolve().parents[2] / "apps/orders/placement/sql/lc_place_order.v1.sql").read_text()


def _inserted_columns(table: str) -> set[str]:
    m = re.search(rf"INSERT INTO {table}(?: AS \w+)? \(([^)]*)\)", SQL)
    assert m, f"no INSERT INTO {table} in lc_place_order"
    return {c.strip() for c in m.group(1).split(",")}


@pytest.mark.parametrize("model", [Order, OrderLine, Buyer, OrderEvent, StockMovement, ListingBuyer])
def test_every_column_is_written_or_has_a_database_default(model: type[models.Model]):
    written = _inserted_columns(model._meta.db_table)
    for field in model._meta.concrete_fields:
        if field.column in written or field.primary_key:
            continue
        has_db_default = field.db_default is not models.NOT_PROVIDED
        assert has_db_default or field.null, (
            f"{model.__name__}.{field.name} is not written by lc_place_order and has no db_default: "
            "give it one, or write it in a new version of the function"
        )
    unknown = written - {f.column for f in model._meta.concrete_fields}
    assert not unknown, f"lc_place_order writes columns {model.__name__} does not have: {unknown}"


def test_a_row_missing_a_column_is_an_error_not_a_default():
    with pytest.raises(KeyError):
        model_from_row(Buyer, {"id": 1, "merchant_id": 1, "external_id": "x", "name": ""})


@pytest.mark.django_db(transaction=True)
def test_the_placed_order_is_the_row_the_database_holds(merchant):
    listing = make_listing(merchant, quota=5)
    placed = order_place(
        req=parse_order_request(order_body(listing.pk, buyer="row-check")),
        merchant_id=merchant.pk,
        idempotency_key="row-check",
    )
    stored = Order.objects.get(pk=placed.order.pk)
    for field in Order._meta.concrete_fields:
        assert getattr(placed.order, field.attname) == getattr(stored, field.attname), field.name
    line = placed.order.lines.all()[0]
    stored_line = OrderLine.objects.get(order_id=stored.pk)
    for field in OrderLine._meta.concrete_fields:
        assert getattr(line, field.attname) == getattr(stored_line, field.attname), field.name
    assert placed.order.buyer.pk == stored.buyer_id
    assert connection.vendor in ("postgresql", "sqlite")
