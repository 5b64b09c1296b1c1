"""Run one sales-platform simulator (``apps.platforms.simulator``) in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.platforms.simulator import SIMULATORS, make_simulator

DEMO_MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="  # base64 of a 16-byte demo AES key


class Command(BaseCommand):
    help = (
        "Run a local Douyin / Kuaishou / Taobao open-platform simulator: it checks our signatures, serves order "
        "details, records stock and shipment calls, and generates show traffic (POST /_sim/show) as pushes to "
        "--push-url (Douyin, Kuaishou) or into its TMC queue (Taobao). Control API under /_sim/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("platform", choices=sorted(SIMULATORS))
        parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--app-key", default=None, help="default: a demo key per platform")
        parser.add_argument("--app-secret", default="sim-secret", help="Kuaishou: the signSecret")
        parser.add_argument("--access-token", default="sim-token")
        parser.add_argument("--shop-id", default=None, help="Douyin/Kuaishou numeric shop id, Taobao seller nick")
        parser.add_argument("--msg-secret", default=DEMO_MSG_SECRET, help="Kuaishou push AES key (base64)")
        parser.add_argument("--push-url", default=None, help="where to POST pushes (Douyin, Kuaishou)")
        parser.add_argument("--heartbeat", type=float, default=None, help="Kuaishou heartbeat interval, seconds")
        parser.add_argument("--redelivery-after", type=float, default=30.0, help="Taobao TMC redelivery, seconds")
        parser.add_argument("--push-sign-method", choices=("md5", "hmac-sha256"), default="md5", help="Douyin")
        parser.add_argument("--no-timestamp-check", action="store_true", help="accept any request timestamp")

    def handle(self, *args: Any, **opts: Any) -> None:
        platform = opts["platform"]
        defaults = {"douyin": ("7001234567890123456", "1234567"), "kuaishou": ("ks699183844582124027", "2161524184"),
                    "taobao": ("12345678", "livecommerce旗舰店")}[platform]  # fmt: skip
        kwargs: dict[str, Any] = {
            "app_key": opts["app_key"] or defaults[0],
            "app_secret": opts["app_secret"],
            "access_token": opts["access_token"],
            "shop_id": opts["shop_id"] or defaults[1],
            "host": opts["host"],
            "port": opts["port"],
            "push_url": opts["push_url"],
            "timestamp_tolerance": None if opts["no_timestamp_check"] else 600.0,
        }
        if platform == "douyin":
            kwargs["push_sign_method"] = opts["push_sign_method"]
        elif platform == "kuaishou":
            kwargs |= {"msg_secret": opts["msg_secret"], "heartbeat_interval": opts["heartbeat"]}
        else:
            kwargs["redelivery_after"] = opts["redelivery_after"]
        try:
            sim = make_simulator(platform, **kwargs)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the {platform} simulator: {exc}") from exc
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        sim.start()
        self.stdout.write(
            f"{platform} simulator on {sim.base_url} (app_key {kwargs['app_key']}, shop {kwargs['shop_id']})"
        )
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
