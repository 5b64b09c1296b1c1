"""The database side of a placement, one engine per database.

``place_in_db`` writes the order, its line, the stock movement and the ledger event, and takes
the hot rows (buyer limit, listing quota and window, stock) as late as possible, in one
transaction. It returns the order as the database holds it (lines prefetched) and the ledger
event's seq, or raises ``Refused`` carrying the refusal the database made (which means the gate
had let through what the database would not: the caller counts that drift).

- ``postgres``: one server-side function call (``sql/lc_place_order.v1.sql``), alone or in a
  batch (``batcher``).
- ``generic`` (SQLite, the embedded default): one ``IMMEDIATE`` transaction of conditional
  statements.
"""

from __future__ import annotations

from django.db import connection

from apps.catalog.selectors import ListingInfo
from apps.orders.models import Order

from ..request import OrderRequest
from . import generic, postgres
from .new_order import NewOrder
from .refusal import Refused, refusal

__all__ = ["NewOrder", "Refused", "place_in_db", "refusal"]


def place_in_db(info: ListingInfo, req: OrderRequest, new: NewOrder) -> tuple[Order, int]:
    engine = postgres if connection.vendor == "postgresql" else generic
    return engine.place(info, req, new)
