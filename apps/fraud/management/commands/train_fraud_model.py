"""Train the risk model on simulated shows plus reviewed history, report it on held-out shows,
and save it (see ``apps/fraud/model.py``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fraud.model import DEFAULT_MODEL_PATH, configured_model_path, history_rows, save, train
from apps.fraud.offline import evaluate, format_report, show_facts
from apps.fraud.simulation import random_config


class Command(BaseCommand):
    help = (
        "Train the fraud model on simulated flash-sale shows (random_config over varied seeds) plus reviewed "
        "orders (RiskAssessment approved / rejected), print recall per abuse kind and the share of genuine orders "
        "flagged per genuine group on held-out shows, and save it where the scorer loads it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shows", type=int, default=24, help="simulated shows to train on (default 24)")
        parser.add_argument("--orders", type=int, default=5000, help="order attempts per show (default 5000)")
        parser.add_argument("--seed", type=int, default=1000, help="the first training show's seed (default 1000)")
        parser.add_argument("--holdout", type=int, default=8, help="held-out shows to report on (default 8)")
        parser.add_argument(
            "--holdout-seed", type=int, default=900_000, help="the first held-out show's seed (default 900000)"
        )
        parser.add_argument(
            "--out",
            default=None,
            help="directory to save into (default: the directory of settings.FRAUD_MODEL_PATH)",
        )
        parser.add_argument(
            "--default",
            action="store_true",
            help=f"write the default model shipped with the code ({DEFAULT_MODEL_PATH.parent}) with its model.json",
        )
        parser.add_argument("--no-history", action="store_true", help="train on simulated shows only")

    def handle(self, *args: Any, **opts: Any) -> None:
        shows, orders, holdout = opts["shows"], opts["orders"], opts["holdout"]
        if shows < 2 or orders < 100 or holdout < 0:
            raise CommandError("--shows >= 2, --orders >= 100 and --holdout >= 0")
        train_seeds = list(range(opts["seed"], opts["seed"] + shows))
        held_seeds = list(range(opts["holdout_seed"], opts["holdout_seed"] + holdout))
        if set(train_seeds) & set(held_seeds):
            raise CommandError("the held-out seeds overlap the training seeds")
        started = time.monotonic()

        history = [] if opts["no_history"] else self._history()
        pairs = []
        for i, seed in enumerate(train_seeds, 1):
            pairs += show_facts(random_config(seed, n_orders=orders), lagged=True)
            if i % 8 == 0 or i == shows:
                self.stdout.write(f"simulated {i}/{shows} shows ({len(pairs)} orders)")
        model = train(pairs, history=history)
        self.stdout.write(
            f"trained {model.version} on {model.info['train_rows']} rows in {model.info['train_seconds']} s; "
            f"review threshold {model.threshold:.2f} (at most 0.3% of genuine validation orders over it)"
        )
        model.info.update(train_seeds=train_seeds, orders_per_show=orders)
        if held_seeds:
            report = evaluate(model, held_seeds, orders, lagged=True)
            model.metrics["held_out"] = report.as_dict()
            self.stdout.write(format_report(report))
        model.info["total_seconds"] = round(time.monotonic() - started, 1)

        if opts["default"]:
            path = save(model, DEFAULT_MODEL_PATH.parent, versioned=False)
            card = {
                "version": model.version,
                "threshold": model.threshold,
                "feature_names": list(model.feature_names),
                "info": model.info,
                "validation": model.metrics.get("validation"),
                "held_out": model.metrics.get("held_out"),
            }
            (path.parent / "model.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        else:
            configured = configured_model_path()
            path = save(model, Path(opts["out"]) if opts["out"] else configured.parent, filename=configured.name)
        self.stdout.write(self.style.SUCCESS(f"saved {path} ({model.info['total_seconds']} s in all)"))
        if not opts["default"] and path.resolve() != configured_model_path().resolve():
            self.stdout.write(f"note: the scorer loads {configured_model_path()}, not {path}")

    def _history(self) -> list[Any]:
        """Reviewed orders as training rows; none (with a message) when the review model or its
        table does not exist yet."""
        from django.db import DatabaseError

        try:
            from apps.fraud.models import RiskAssessment  # type: ignore[import-not-found,attr-defined,unused-ignore]  # the lead's model, maybe not merged yet
        except (ImportError, AttributeError):
            self.stdout.write("no labelled history: apps.fraud.models.RiskAssessment does not exist yet")
            return []
        try:
            records = list(
                RiskAssessment.objects.filter(review_outcome__in=("approved", "rejected"))
                .exclude(features__isnull=True)
                .values_list("features", "review_outcome")
            )
        except DatabaseError as exc:
            self.stdout.write(f"no labelled history: the RiskAssessment table cannot be read ({exc})")
            return []
        rows = history_rows(records)
        approved = sum(1 for _, label in rows if label.kind == "genuine")
        self.stdout.write(f"labelled history: {approved} approved, {len(rows) - approved} rejected orders")
        return rows
