from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).resolve().parent.parent / "placement" / "sql"


def _load(schema_editor, name):  # noqa: ANN001
    schema_editor.execute((SQL_DIR / name).read_text(encoding="utf-8"), params=None)


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    """lc_place_orders v3 writes each hot row once per batch (PostgreSQL only; same signature)."""
    if schema_editor.connection.vendor == "postgresql":
        _load(schema_editor, "lc_place_orders.v3.sql")


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        _load(schema_editor, "lc_place_orders.v2.sql")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_listing_tally_seq"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
