"""Rolling-origin backtest of the demand forecast against the naive baseline, on a merchant's
past shows (the rollups): ``manage.py forecast_backtest --merchant demo [--step 5] [--min-train 12]``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.merchants.models import Merchant
from apps.reports.forecast import MIN_TRAIN_SHOWS, backtest


class Command(BaseCommand):
    help = "Backtest the demand forecast on a merchant's past shows against the same-SKU-last-show baseline."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--merchant", required=True, help="slug or id")
        parser.add_argument("--step", type=int, default=5, help="shows forecast per fold (default 5)")
        parser.add_argument("--min-train", type=int, default=MIN_TRAIN_SHOWS, help="shows before the first fold")

    def handle(self, *args: Any, **opts: Any) -> None:
        ref = str(opts["merchant"])
        merchant = (Merchant.objects.filter(pk=int(ref)).first() if ref.isdigit() else None) or (
            Merchant.objects.filter(slug=ref).first()
        )
        if merchant is None:
            raise CommandError(f"no merchant {ref!r} (give its slug or id: manage.py listmerchants)")
        if opts["step"] < 1 or opts["min_train"] < 2:
            raise CommandError("--step must be 1 or more and --min-train 2 or more")
        began = time.monotonic()
        result = backtest(merchant_id=merchant.pk, min_train=opts["min_train"], step=opts["step"])
        if not result["folds"]:
            raise CommandError(f"too few shows to backtest: {result['shows']} (need more than {opts['min_train']})")
        result["seconds"] = round(time.monotonic() - began, 1)
        self.stdout.write(json.dumps({"merchant": merchant.slug, **result}))
