"""PostgreSQL: ``lc_refuse(reason)`` raises, so that the one-statement order placement
(``placement._PLACE_SQL``) rolls back everything it wrote when a hot row refuses. Other engines
do not use it."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION lc_refuse(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:' || reason;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS lc_refuse(text);"


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
