"""Re-encrypt every stored secret with the first key of SECRETS_ENCRYPTION_KEYS (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.encryption import DEFAULT_BATCH_SIZE, rotate_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field with the first key of LC_SECRETS_KEYS, in batches. "
        "Safe to run again: values already made with the first key are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows per transaction")

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            report = rotate_all(batch_size=batch_size)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        for label, count in sorted(report.rotated.items()):
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(f"{report.total_rotated} re-encrypted, {report.current} already current")
        if report.undecryptable:
            for where in report.undecryptable:
                self.stderr.write(f"cannot decrypt {where}")
            raise CommandError(
                f"{len(report.undecryptable)} stored secret(s) open with none of the keys: put back the key they "
                "were made with (after the first) and run again"
            )
