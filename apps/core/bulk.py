"""Set-based writes of many rows whose values differ row by row.

Django's ``bulk_update`` builds ``UPDATE ... SET f = CASE pk WHEN ... END`` too, but resolves a
``When`` expression per row and field: about a millisecond of Python per row on a 2-core machine,
more than the statement itself takes (a batch shipping ten thousand orders spent seconds there).
:func:`update_rows` writes the same statement from the fields' own database preparation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model

BATCH = 500  # rows per statement


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
