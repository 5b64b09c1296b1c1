"""Run one carrier simulator (``apps.fulfilment.simulator``) in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fulfilment.simulator import DEMO_ACCOUNTS, SIMULATORS, make_simulator


class Command(BaseCommand):
    help = (
        "Run a local Kuaidi100 / Kdniao simulator: it checks our signatures, allocates waybill numbers, answers "
        "subscriptions and tracking queries, and sends signed tracking pushes (POST /_sim/advance, /_sim/track), "
        "retried until acknowledged. Faults: POST /_sim/fault. The defaults are the demo account's credentials."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("carrier", choices=sorted(SIMULATORS))
        parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--customer", default=None, help="Kuaidi100 customer")
        parser.add_argument("--key", default=None, help="Kuaidi100 key")
        parser.add_argument("--secret", default=None, help="Kuaidi100 e-waybill secret")
        parser.add_argument("--salt", default=None, help="Kuaidi100: signs pushes of a subscription that names none")
        parser.add_argument("--ebusiness-id", default=None, help="Kdniao EBusinessID")
        parser.add_argument("--app-key", default=None, help="Kdniao AppKey")
        parser.add_argument("--push-url", default=None, help="Kdniao: where tracking pushes go (set in its console)")

    def handle(self, *args: Any, **opts: Any) -> None:
        carrier = opts["carrier"]
        names = {"kuaidi100": ("customer", "key", "secret", "salt"), "kdniao": ("ebusiness_id", "app_key", "push_url")}
        given = {name: opts[name] for name in names[carrier] if opts.get(name) is not None}
        try:
            sim = make_simulator(carrier, host=opts["host"], port=opts["port"], **given)
        except (OSError, ValueError, TypeError) as exc:
            raise CommandError(f"cannot start the {carrier} simulator: {exc}") from exc
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        sim.start()
        account = {**DEMO_ACCOUNTS[carrier], **given}
        who = account.get("customer") or account.get("ebusiness_id")
        self.stdout.write(f"{carrier} simulator on {sim.base_url} (account {who})", ending="\n")
        self.stdout.flush()
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
