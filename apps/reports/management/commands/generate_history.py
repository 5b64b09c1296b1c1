"""``manage.py generate_history``: months of made-up past shows and orders for one merchant (the
demo, tests, benchmarks). What it writes and why nothing automatic acts on it:
``apps.reports.history``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.merchants.models import Merchant
from apps.reports.errors import HistoryError
from apps.reports.history import HistoryParams, HistoryResult, history_delete, history_exists, history_generate
from apps.reports.rollups import rollup_generated


class Command(BaseCommand):
    help = (
        "Generate a realistic history for one merchant: --shows past live shows over the last --weeks weeks "
        "with --orders orders (seasonality by weekday and hour, streamers, regions, repeat buyers, platforms). "
        "--replace deletes the merchant's earlier generated history first; without it a run adds more shows."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--orders", type=int, required=True, help="orders in all (0 or more)")
        parser.add_argument("--shows", type=int, required=True, help="past shows (1 or more)")
        parser.add_argument("--merchant", required=True, help="the merchant's slug or id")
        parser.add_argument("--seed", type=int, default=0, help="the same seed makes the same history (default 0)")
        parser.add_argument("--weeks", type=int, default=12, help="how far back the shows go (default 12)")
        parser.add_argument(
            "--replace", action="store_true", help="delete the merchant's earlier generated history first"
        )
        parser.add_argument(
            "--if-absent",
            action="store_true",
            help="do nothing when the merchant has generated history already (the demo setup)",
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per INSERT at most (default 5000)")

    def handle(self, *args: Any, **opts: Any) -> None:
        merchant = self._merchant(str(opts["merchant"]))
        params = HistoryParams(
            orders=opts["orders"],
            shows=opts["shows"],
            weeks=opts["weeks"],
            seed=opts["seed"],
            batch_size=opts["batch_size"],
        )
        verbosity = int(opts["verbosity"])
        self._began = time.monotonic()
        try:
            params.check()  # before anything is deleted or written
            if opts["if_absent"] and history_exists(merchant=merchant):
                if verbosity >= 1:
                    self.stdout.write(json.dumps({"merchant": merchant.slug, "generated": "already there"}))
                return
            with transaction.atomic():
                deleted = history_delete(merchant=merchant) if opts["replace"] else None
                result = history_generate(
                    merchant=merchant, params=params, progress=self._progress if verbosity >= 2 else None
                )
        except HistoryError as exc:
            raise CommandError(exc.message) from exc
        began = time.monotonic()
        reports = rollup_generated(merchant_id=merchant.pk)  # the reports read rollups, never the orders
        report_seconds = time.monotonic() - began
        if verbosity >= 1:
            summary: dict[str, Any] = {
                "merchant": merchant.slug,
                "shows": result.shows,
                "listings": result.listings,
                "orders": result.orders,
                "lines": result.lines,
                "new_buyers": result.buyers_new,
                "new_products": result.products_new,
                "statuses": dict(sorted(result.statuses.items())),
                "from": result.first_show.isoformat() if result.first_show else None,
                "to": result.last_show.isoformat() if result.last_show else None,
                "seconds": round(result.seconds, 1),
                "reports": reports,
                "reports_seconds": round(report_seconds, 1),
            }
            if deleted is not None:
                summary["deleted"] = {"shows": deleted.shows, "orders": deleted.orders, "buyers": deleted.buyers}
            self.stdout.write(json.dumps(summary, ensure_ascii=False))

    def _merchant(self, ref: str) -> Merchant:
        found = Merchant.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
        found = found or Merchant.objects.filter(slug=ref).first()
        if found is None:
            raise CommandError(f"no merchant {ref!r} (give its slug or id: manage.py listmerchants)")
        return found

    def _progress(self, result: HistoryResult) -> None:
        elapsed = time.monotonic() - self._began
        self.stdout.write(f"{result.shows} shows, {result.orders:,} orders, {elapsed:.1f} s")
