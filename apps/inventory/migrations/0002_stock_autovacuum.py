"""The stock row of a flash-sale SKU is updated thousands of times a minute: vacuum it eagerly
(PostgreSQL only; other engines have no such setting)."""

from django.db import migrations


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ("inventory_stock", "catalog_listing", "orders_ledgerhead", "orders_listingbuyer"):
        schema_editor.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000, "
            "autovacuum_vacuum_cost_delay = 0, fillfactor = 50)"
        )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial"), ("catalog", "0001_initial"), ("orders", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
