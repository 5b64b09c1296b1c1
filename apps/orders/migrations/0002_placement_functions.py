"""PostgreSQL: the placement's server-side functions, loaded from their versioned files in
``apps/orders/placement/sql`` (a later version is a new file and a new migration), and eager
vacuuming of the rows a flash sale updates thousands of times a minute. Other engines use the
generic placement and need neither."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "placement" / "sql"
FILES = ["lc_listing_open.v1.sql", "lc_place_order.v1.sql", "lc_place_orders.v1.sql"]
DROP = [
    "DROP FUNCTION IF EXISTS lc_place_orders(jsonb)",
    "DROP FUNCTION IF EXISTS lc_place_order(bigint, bigint, bigint, bigint, integer, text, text, text, timestamptz,"
    " text, text, text, jsonb, text, text, text, text, text)",
    "DROP FUNCTION IF EXISTS lc_listing_open(text, timestamptz, timestamptz, timestamptz)",
]
HOT_TABLES = ("inventory_stock", "catalog_listing", "orders_ledgerhead", "orders_listingbuyer")


def load_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in FILES:
        schema_editor.execute(load_sql(name), params=None)  # the files hold % (ROWTYPE): no interpolation
    for table in HOT_TABLES:
        schema_editor.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, "
            "autovacuum_vacuum_cost_delay = 0, fillfactor = 50)"
        )


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor != "postgresql":
        return
    for sql in DROP:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial"), ("inventory", "0001_initial"), ("catalog", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
