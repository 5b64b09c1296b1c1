from pathlib import Path

from django.db import migrations, models

SQL_DIR = Path(__file__).resolve().parent.parent / "placement" / "sql"


def _load(schema_editor, name):  # noqa: ANN001
    schema_editor.execute((SQL_DIR / name).read_text(encoding="utf-8"), params=None)


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    """lc_place_order v3 writes the signals row's received_at (PostgreSQL only; same signature)."""
    if schema_editor.connection.vendor == "postgresql":
        _load(schema_editor, "lc_place_order.v3.sql")


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        _load(schema_editor, "lc_place_order.v2.sql")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_line_reserved"),
    ]

    operations = [
        migrations.AddField(
            model_name="ordersignals",
            name="received_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="request received"),
        ),
        migrations.RunPython(forward, backward),
    ]
