"""Run the payment provider's refund simulator (``apps.fulfilment.payments.simulator``) in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fulfilment.payments.simulator import DEFAULT_PORT, DEMO_ACCOUNT, make_simulator

SETTINGS_ACCOUNT = {
    "app_id": "PAYMENT_APP_ID",
    "api_secret": "PAYMENT_API_SECRET",
    "webhook_secret": "PAYMENT_WEBHOOK_SECRET",
}


class Command(BaseCommand):
    help = (
        "Run a local payment provider refund API (docs/payment-provider.md): it checks our signatures, keeps paid "
        "transactions (POST /_sim/transactions), answers refunds 'processing', settles them after --settle-seconds "
        "and posts the signed callback, retried until answered 2xx. Faults: POST /_sim/fault. The defaults are "
        "the local settings' account."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"0 picks a free port (default {DEFAULT_PORT})"
        )
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--settle-seconds", type=float, default=2.0, help="processing -> settled (default 2)")
        parser.add_argument("--app-id", default=None, help=f"X-App-Id it accepts (default {DEMO_ACCOUNT['app_id']})")
        parser.add_argument("--api-secret", default=None, help="the secret our calls are signed with")
        parser.add_argument("--webhook-secret", default=None, help="the secret it signs callbacks with")
        parser.add_argument(
            "--transaction", action="append", default=[], metavar="ID=AMOUNT", help="a paid transaction; repeatable"
        )
        parser.add_argument(
            "--account-from-settings",
            action="store_true",
            help="the app id and secrets not given above from the settings (PAYMENT_APP_ID, PAYMENT_API_SECRET, "
            "PAYMENT_WEBHOOK_SECRET): the account a server with the same environment uses (./run starts it so)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["account_from_settings"]:  # no secret on the command line (``ps`` shows it to everyone)
            for option, name in SETTINGS_ACCOUNT.items():
                opts[option] = opts[option] or getattr(settings, name, "") or None
        try:
            transactions = dict(item.split("=", 1) for item in opts["transaction"])
            sim = make_simulator(
                host=opts["host"],
                port=opts["port"],
                settle_seconds=opts["settle_seconds"],
                app_id=opts["app_id"],
                api_secret=opts["api_secret"],
                webhook_secret=opts["webhook_secret"],
                transactions=transactions,
            )
        except (OSError, ValueError, TypeError, ArithmeticError) as exc:
            raise CommandError(f"cannot start the payment simulator: {exc}") from exc
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        sim.start()
        self.stdout.write(f"payment provider simulator on {sim.base_url} (app {sim.app_id})", ending="\n")
        self.stdout.flush()
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
