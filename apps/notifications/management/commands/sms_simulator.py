"""Run the Aliyun SMS simulator (``apps.notifications.simulator``) in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.notifications.simulator import DEMO_ACCOUNT, make_simulator


class Command(BaseCommand):
    help = (
        "Run a local Aliyun SMS (Dysmsapi SendSms) simulator: it checks our signatures, sign names and templates, "
        "records the messages (GET /_sim/messages), refuses on command (POST /_sim/refuse) and times out or fails "
        "on command (POST /_sim/fault). The defaults are the demo account's credentials, sign name and templates."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--access-key-id", default=None)
        parser.add_argument("--access-key-secret", default=None)
        parser.add_argument("--sign-name", action="append", default=None, help="a sign name it knows (repeatable)")
        parser.add_argument(
            "--template",
            action="append",
            default=None,
            metavar="CODE[=TEXT]",
            help="a template it knows, with its text (${var} placeholders are required parameters); repeatable",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        templates = None
        if opts["template"]:
            templates = dict(t.split("=", 1) if "=" in t else (t, "") for t in opts["template"])
        try:
            sim = make_simulator(
                host=opts["host"],
                port=opts["port"],
                access_key_id=opts["access_key_id"],
                access_key_secret=opts["access_key_secret"],
                sign_names=opts["sign_name"],
                templates=templates,
            )
        except (OSError, ValueError, TypeError) as exc:
            raise CommandError(f"cannot start the SMS simulator: {exc}") from exc
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        sim.start()
        key = opts["access_key_id"] or DEMO_ACCOUNT["access_key_id"]
        self.stdout.write(f"aliyun sms simulator on {sim.base_url} (AccessKeyId {key})", ending="\n")
        self.stdout.flush()
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
