"""Run one sales-platform simulator (``apps.platforms.simulator``) in the foreground."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.platforms.demo import DEMO_MSG_SECRET, DEMO_SHOPS
from apps.platforms.simulator import SIMULATORS, PlatformSimulator, ShowSpec, make_simulator


def build_simulator(**opts: Any) -> PlatformSimulator:
    """The (not yet started) simulator the command's options describe; the defaults are the demo
    shop's credentials (``apps.platforms.demo``). Raises OSError (the port) or ValueError."""
    platform = opts["platform"]
    demo = DEMO_SHOPS[platform]
    kwargs: dict[str, Any] = {
        "app_key": opts.get("app_key") or demo.app_key,
        "app_secret": opts.get("app_secret") or demo.app_secret,
        "access_token": opts.get("access_token") or demo.access_token,
        "shop_id": opts.get("shop_id") or demo.shop_id,
        "host": opts.get("host") or "127.0.0.1",
        "port": opts["port"],
        "push_url": opts.get("push_url"),
        "timestamp_tolerance": None if opts.get("no_timestamp_check") else 600.0,
    }
    if platform == "douyin":
        kwargs["push_sign_method"] = opts.get("push_sign_method") or "md5"
    elif platform == "kuaishou":
        kwargs |= {"msg_secret": opts.get("msg_secret") or DEMO_MSG_SECRET, "heartbeat_interval": opts.get("heartbeat")}
    else:
        kwargs["redelivery_after"] = opts.get("redelivery_after") or 30.0
    return make_simulator(platform, **kwargs)


def traffic_spec(value: str | None) -> ShowSpec | None:
    """``--traffic``: a show as ``POST /_sim/show`` takes it (JSON), or None. Raises ValueError."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"--traffic is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("--traffic must be a JSON object")
    return ShowSpec.from_dict(data)


class Command(BaseCommand):
    help = (
        "Run a local Douyin / Kuaishou / Taobao open-platform simulator: it checks our signatures, serves order "
        "details, records stock and shipment calls, and generates show traffic (POST /_sim/show, or --traffic) as "
        "pushes to --push-url (Douyin, Kuaishou) or into its TMC queue (Taobao). Control API under /_sim/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("platform", choices=sorted(SIMULATORS))
        parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--app-key", default=None, help="default: the demo shop's key per platform")
        parser.add_argument("--app-secret", default=None, help="Kuaishou: the signSecret (default: the demo's)")
        parser.add_argument("--access-token", default=None, help="default: the demo shop's")
        parser.add_argument("--shop-id", default=None, help="Douyin/Kuaishou numeric shop id, Taobao seller nick")
        parser.add_argument("--msg-secret", default=None, help="Kuaishou push AES key (base64; default: the demo's)")
        parser.add_argument("--push-url", default=None, help="where to POST pushes (Douyin, Kuaishou)")
        parser.add_argument("--heartbeat", type=float, default=None, help="Kuaishou heartbeat interval, seconds")
        parser.add_argument("--redelivery-after", type=float, default=30.0, help="Taobao TMC redelivery, seconds")
        parser.add_argument("--push-sign-method", choices=("md5", "hmac-sha256"), default="md5", help="Douyin")
        parser.add_argument("--no-timestamp-check", action="store_true", help="accept any request timestamp")
        parser.add_argument(
            "--traffic",
            default=None,
            metavar="JSON",
            help='a show to generate from the start, as POST /_sim/show takes it ({"skus": [...], "orders": 2, ...})',
        )
        parser.add_argument(
            "--traffic-every", type=float, default=60.0, help="repeat --traffic every this many seconds (next seed)"
        )
        parser.add_argument(
            "--traffic-rounds", type=int, default=None, help="stop --traffic after this many rounds (default: never)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        platform = opts["platform"]
        try:
            spec = traffic_spec(opts["traffic"])
            if opts.get("traffic_rounds") is not None and opts["traffic_rounds"] < 1:
                raise ValueError("--traffic-rounds must be 1 or more")
            sim = build_simulator(**opts)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"cannot start the {platform} simulator: {exc}") from exc
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        sim.start()
        if spec is not None:
            sim.run_traffic(spec, opts["traffic_every"], opts.get("traffic_rounds"))
        self.stdout.write(
            f"{platform} simulator on {sim.base_url} (app_key {sim.app_key}, shop {sim.shop_id})"
            + (f", {spec.orders} orders every {opts['traffic_every']:g} s" if spec is not None else "")
        )
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()
