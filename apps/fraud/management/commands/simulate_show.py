"""Replay a simulated show against a running server (see ``apps/fraud/replay.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from apps.fraud.replay import ReplayResult, ReplayTarget, fetch_listing, replay_async, schedule_open
from apps.fraud.simulation import generate_attempts, random_config


class Command(BaseCommand):
    help = (
        "Generate a labelled flash-sale order stream (random_config(seed)) and replay it through the HTTP API of "
        "a running server, paying where the buyer pays; prints accepted / refused / paid per abuse kind and "
        "genuine group."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="a merchant API token")
        parser.add_argument("--listing", type=int, required=True, help="the listing id to order from")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--orders", type=int, default=1000, help="order attempts to generate")
        parser.add_argument("--speed", type=float, default=1.0, help="time-scale factor (10 = ten times faster)")
        parser.add_argument(
            "--secret",
            default=None,
            help="the server's PAYMENT_WEBHOOK_SECRET (default: this process's setting)",
        )
        parser.add_argument(
            "--opens-in",
            type=float,
            default=None,
            help="move the listing's opening this many seconds ahead first (so shots before open meet a closed "
            "listing); default: keep the listing's opens_at",
        )
        parser.add_argument("--concurrency", type=int, default=200, help="connection pool size")
        parser.add_argument("--key-prefix", default=None, help="Idempotency-Key prefix (default: L<listing>-)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["speed"] <= 0 or opts["orders"] < 1 or opts["concurrency"] < 1:
            raise CommandError("--speed must be > 0, --orders and --concurrency >= 1")
        secret = opts["secret"] if opts["secret"] is not None else settings.PAYMENT_WEBHOOK_SECRET
        if not secret:
            raise CommandError("no payment secret: pass --secret or set PAYMENT_WEBHOOK_SECRET")
        target = ReplayTarget(
            base_url=opts["base_url"].rstrip("/"),
            token=opts["token"],
            listing_id=opts["listing"],
            payment_secret=secret,
            key_prefix=opts["key_prefix"] if opts["key_prefix"] is not None else f"L{opts['listing']}-",
        )
        try:
            result = asyncio.run(self._run(target, opts))
        except httpx.HTTPStatusError as exc:
            raise CommandError(
                f"{exc.request.method} {exc.request.url}: {exc.response.status_code} {exc.response.text[:300]}"
            ) from None
        except httpx.TransportError as exc:
            raise CommandError(f"cannot reach {target.base_url}: {exc!r}") from None
        self.stdout.write(result.format())

    async def _run(self, target: ReplayTarget, opts: dict[str, Any]) -> ReplayResult:
        async with httpx.AsyncClient(
            base_url=target.base_url,
            limits=httpx.Limits(max_connections=opts["concurrency"], max_keepalive_connections=opts["concurrency"]),
            timeout=httpx.Timeout(30.0, pool=None),
        ) as client:
            listing = await fetch_listing(client, target)
            config = replace(
                random_config(opts["seed"], n_orders=opts["orders"]),
                quota=listing["quota"],
                per_buyer_limit=listing["per_buyer_limit"],
            )
            attempts = generate_attempts(config)
            first_s = min((a.t_ms for a in attempts), default=0) / opts["speed"] / 1000
            if opts["opens_in"] is not None:
                opens_at = await schedule_open(client, target, opens_in_s=max(opts["opens_in"], -first_s + 0.5))
            else:
                parsed = parse_datetime(listing["opens_at"]) if listing.get("opens_at") else None
                earliest = datetime.now(UTC) + timedelta(seconds=0.5 - first_s)
                opens_at = parsed if parsed is not None and parsed >= earliest else earliest
                if parsed is None or parsed < earliest:
                    self.stderr.write(
                        "note: the listing is already open (or opens too soon); the shots before open reach an open "
                        "listing. Use --opens-in to schedule the opening."
                    )
            self.stderr.write(
                f"replaying {len(attempts)} attempts (seed {opts['seed']}) on listing {target.listing_id}, "
                f"opening {opens_at.isoformat()}, speed x{opts['speed']:g}"
            )
            return await replay_async(
                attempts,
                target=target,
                opens_at=opens_at,
                speed=opts["speed"],
                client=client,
                concurrency=opts["concurrency"],
            )
