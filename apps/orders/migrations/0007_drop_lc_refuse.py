"""PostgreSQL: drop ``lc_refuse`` (0002). It served the one-statement placement that
``lc_place_order`` (0004) replaced; that function raises its refusals itself."""

from django.db import migrations

DROP = "DROP FUNCTION IF EXISTS lc_refuse(text);"
CREATE = """
CREATE OR REPLACE FUNCTION lc_refuse(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:' || reason;
END
$$;
"""


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [("orders", "0006_lc_place_orders_per_order_failures")]
    operations = [migrations.RunPython(forward, backward)]
