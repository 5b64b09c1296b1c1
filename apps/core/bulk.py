"""Set-based writes of many rows whose values differ row by row.

Django's ``bulk_update`` builds ``UPDATE ... SET f = CASE pk WHEN ... END`` too, but resolves a
``When`` expression per row and field: about a millisecond of Python per row on a 2-core machine,
more than the statement itself takes (a batch shipping ten thousand orders spent seconds there).
:func:`update_rows` writes the same statement from the fields' own database preparation.

:func:`insert_rows` is ``bulk_create`` for rows that must keep the values they are given: it
writes ``auto_now`` / ``auto_now_add`` columns as given (``bulk_create`` stamps them with the
current time: no good for history written after the fact), takes plain tuples instead of model
instances (a million instances cost more Python than the inserts), and on PostgreSQL writes with
``COPY``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

BATCH = 500  # rows per statement
INSERT_BATCH = 5000  # rows per INSERT at most (fewer when the columns would pass the parameter limit)
# Fields whose Python values (int, str, bool, None) the drivers take as they are: no preparation.
_AS_GIVEN = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "OneToOneField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)
POSTGRES_MAX_PARAMS = 65535  # bind parameters of one statement (the wire protocol's limit)


def update_rows(
    model: type[Model],
    rows: Sequence[Model],
    fields: Sequence[str],
    *,
    same: Mapping[str, Any] | None = None,
    batch_size: int = BATCH,
) -> int:
    """Write ``fields`` of each of ``rows`` (instances of ``model`` with their pk, values set on
    them), and ``same`` (field name -> one value for every row), in one ``UPDATE`` per
    ``batch_size`` rows. Values go through each field's ``get_db_prep_save`` (as ``save`` does); no
    signals, no ``auto_now``. Returns the number of rows updated."""
    if not rows:
        return 0
    meta = model._meta
    qn = connection.ops.quote_name
    assert meta.pk is not None  # every concrete model has one
    table, pk_column = qn(meta.db_table), qn(_column(model, meta.pk.name)[1])
    same = same or {}
    cast = connection.features.requires_casted_case_in_updates  # PostgreSQL: a CASE of literals is text
    updated = 0
    with connection.cursor() as cur:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            sets: list[str] = []
            params: list[Any] = []
            for name in fields:
                field, column = _column(model, name)
                case = f"CASE {pk_column} {' '.join(['WHEN %s THEN %s'] * len(batch))} END"
                if cast:
                    case = f"CAST({case} AS {field.cast_db_type(connection)})"
                sets.append(f"{qn(column)} = {case}")
                for row in batch:
                    params += [row.pk, field.get_db_prep_save(getattr(row, field.attname), connection)]
            for name, value in same.items():
                field, column = _column(model, name)
                sets.append(f"{qn(column)} = %s")
                params.append(field.get_db_prep_save(value, connection))
            ids = ", ".join(["%s"] * len(batch))
            cur.execute(
                f"UPDATE {table} SET {', '.join(sets)} WHERE {pk_column} IN ({ids})",
                [*params, *(row.pk for row in batch)],
            )
            updated += cur.rowcount
    return updated


def _column(model: type[Model], name: str) -> tuple[Field, str]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete or not field.column:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field, field.column


def insert_rows(
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = INSERT_BATCH,
    returning: bool = True,
) -> list[int]:
    """Insert ``rows`` (one tuple of values per row, in the order of ``fields``) into ``model``'s
    table, ``batch_size`` rows at a time. Values are written as given: no
    ``auto_now``/``auto_now_add``, no model defaults (every column without a database default
    must be among ``fields``), no signals, no validation. Integer, text and boolean values go to
    the driver as they are, date-times (aware ones) and decimals through the backend's adapters,
    anything else (JSON...) through the field's ``get_db_prep_save``.

    On PostgreSQL each batch is one ``COPY`` (the primary keys drawn first from the table's
    sequence, one query a batch); elsewhere multi-row ``INSERT ... RETURNING`` statements, as
    many rows each as the parameter limit allows (SQLite 3.35+). Returns the new primary keys in
    the order of ``rows``, or ``[]`` with ``returning`` False (``returning`` needs an
    auto-incremented primary key). Runs in the caller's transaction."""
    meta = model._meta
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: the proxy costs a lookup per use
    assert meta.pk is not None  # every concrete model has one
    columns = [_column(model, name) for name in fields]
    preps = [_preparer(f, db) for f, _c in columns]
    pk_column = _column(model, meta.pk.name)[1]
    if db.vendor == "postgresql":
        write = _copy_writer(db, meta.db_table, pk_column, [c for _f, c in columns], returning)
        per_batch = batch_size
    else:
        write = _insert_writer(db, meta.db_table, pk_column, [c for _f, c in columns], returning)
        per_batch = max(1, min(batch_size, _max_params(db) // max(1, len(columns))))
    pks: list[int] = []
    batch: list[Sequence[Any]] = []
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"insert_rows: a row of {len(row)} values for {len(columns)} fields")
        batch.append([value if prep is None else prep(value) for prep, value in zip(preps, row, strict=True)])
        if len(batch) == per_batch:
            pks += write(batch)
            batch = []
    if batch:
        pks += write(batch)
    return pks


Writer = Callable[[list[Sequence[Any]]], list[int]]


def _insert_writer(db: BaseDatabaseWrapper, table: str, pk_column: str, columns: list[str], returning: bool) -> Writer:
    qn = db.ops.quote_name
    head = f"INSERT INTO {qn(table)} ({', '.join(qn(c) for c in columns)}) VALUES "
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    tail = f" RETURNING {qn(pk_column)}" if returning else ""

    def write(batch: list[Sequence[Any]]) -> list[int]:
        with db.cursor() as cur:
            cur.execute(head + ", ".join([one] * len(batch)) + tail, [v for row in batch for v in row])
            # Sorted: SQLite does not promise RETURNING's order, but it numbers the rows in the
            # order of the VALUES list (a new row's id is above every id before it).
            return sorted(r[0] for r in cur.fetchall()) if returning else []

    return write


def _copy_writer(db: BaseDatabaseWrapper, table: str, pk_column: str, columns: list[str], returning: bool) -> Writer:
    """``COPY`` rather than ``INSERT``: the driver splits and quotes nothing (a ``VALUES`` list of
    thousands of rows costs more in the client than the insert does in the server)."""
    qn = db.ops.quote_name
    names = ([pk_column] if returning else []) + columns
    copy_sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in names)}) FROM STDIN"
    ids_sql = "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"

    def write(batch: list[Sequence[Any]]) -> list[int]:
        with db.cursor() as cur:
            ids: list[int] = []
            if returning:
                cur.execute(ids_sql, [table, pk_column, len(batch)])
                ids = [r[0] for r in cur.fetchall()]
            with cur.copy(copy_sql) as copy:
                if returning:
                    for pk, row in zip(ids, batch, strict=True):
                        copy.write_row((pk, *row))
                else:
                    for row in batch:
                        copy.write_row(row)
            return ids

    return write


def _preparer(field: Field, db: BaseDatabaseWrapper) -> Callable[[Any], Any] | None:
    """What turns a Python value of ``field`` into what the driver takes (None: nothing to do)."""
    kind = field.get_internal_type()
    if kind in _AS_GIVEN:
        return None
    if kind == "DateTimeField":
        return db.ops.adapt_datetimefield_value
    if kind == "DecimalField":
        digits, places = field.max_digits, field.decimal_places  # type: ignore[attr-defined]  # a DecimalField
        return lambda value: db.ops.adapt_decimalfield_value(value, digits, places)
    return lambda value: field.get_db_prep_save(value, db)


def _max_params(db: BaseDatabaseWrapper) -> int:
    """Bind parameters one statement may carry on this connection."""
    if db.vendor == "sqlite":
        db.ensure_connection()
        getlimit = getattr(db.connection, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return int(db.features.max_query_params or POSTGRES_MAX_PARAMS)
