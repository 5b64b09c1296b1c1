"""The demo's sales platforms for ./run (after ``load_demo``): see ``apps.platforms.demo``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from apps.core.commands import RedisCommand
from apps.merchants.models import Merchant
from apps.platforms.demo import DEMO_SHOPS, demo_platforms_connect


def _simulator(value: str) -> tuple[str, str]:
    platform, sep, url = value.partition("=")
    if not sep or platform not in DEMO_SHOPS or not url.startswith(("http://", "https://")):
        raise ValueError(value)
    return platform, url.rstrip("/")


class Command(RedisCommand):
    help = (
        "Connect the demo merchant's Douyin, Kuaishou and Taobao shops to local simulators, map the demo show's "
        "SKUs and sell the show there (idempotent; run load_demo first). Prints, as JSON, what to start each "
        "simulator with (push URL, show traffic)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--simulator",
            action="append",
            type=_simulator,
            required=True,
            metavar="PLATFORM=URL",
            help="a platform and its simulator's base URL (repeat per platform)",
        )
        parser.add_argument("--base-url", required=True, help="the running server, for the push URLs")

    def handle(self, *args: Any, **opts: Any) -> None:
        merchant = Merchant.objects.filter(slug="demo").first()
        if merchant is None:
            raise CommandError("no demo merchant: run load_demo first")
        result = demo_platforms_connect(
            merchant=merchant, simulators=dict(opts["simulator"]), base_url=opts["base_url"]
        )
        self.stdout.write(json.dumps(result, ensure_ascii=False))
