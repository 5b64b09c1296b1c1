"""The demo's four channels (``./run``): ``load_demo`` and ``load_demo_platforms`` connect a
Douyin, a Kuaishou and a Taobao shop to simulators started exactly as the launcher starts them
(its command line, through the ``platform_simulator`` command's own parser), and each simulator's
show traffic becomes orders of ours on the demo show's live listings."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from django.core.management import call_command

from apps.catalog.models import Listing
from apps.merchants.models import Merchant
from apps.orders.models import Order
from apps.orders.selectors import session_summary
from apps.platforms.demo import DEMO_SHOPS, demo_show
from apps.platforms.management.commands.platform_simulator import Command, build_simulator, traffic_spec
from apps.platforms.models import InboxMessage, PlatformOrder, PlatformShop, PlatformSkuMapping
from apps.platforms.simulator import PlatformSimulator
from livecommerce import launcher

from .test_intake import _drain

pytestmark = pytest.mark.django_db(transaction=True)
PLATFORMS = ("douyin", "kuaishou", "taobao")


def _load_demo(base_url: str) -> tuple[dict[str, int], dict[str, dict]]:
    call_command("load_demo", stdout=io.StringIO())
    ports = {platform: launcher.free_port() for platform in PLATFORMS}
    out = io.StringIO()
    args = [f"--simulator={platform}=http://127.0.0.1:{port}" for platform, port in ports.items()]
    call_command("load_demo_platforms", "--base-url", base_url, *args, stdout=out)
    return ports, json.loads(out.getvalue())


def _as_launched(platform: str, port: int, setup: dict) -> tuple[PlatformSimulator, dict]:
    """The simulator ./run starts for ``platform`` (not started yet) and its parsed options."""
    argv = launcher.simulator_command(platform, port, setup)
    parser = Command().create_parser("manage.py", "platform_simulator")
    opts = vars(parser.parse_args(argv[argv.index("platform_simulator") + 1 :]))
    return build_simulator(**opts), opts


def test_demo_show_gets_orders_from_the_three_simulators(live_server, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path  # the demo token file
    ports, setup = _load_demo(live_server.url)
    merchant = Merchant.objects.get(slug="demo")
    show = demo_show(merchant)
    assert show is not None and set(show.platforms) == {"storefront", *PLATFORMS}
    listings = set(Listing.objects.filter(session=show).values_list("pk", flat=True))
    shops = {s.platform: s for s in PlatformShop.objects.filter(merchant=merchant)}
    assert set(shops) == set(PLATFORMS)
    for platform, shop in shops.items():
        assert shop.api_base_url == f"http://127.0.0.1:{ports[platform]}"
        assert PlatformSkuMapping.objects.filter(shop=shop).count() == len(listings)
        assert (setup[platform]["push_url"] is None) == (platform == "taobao")
        assert {s["code"] for s in setup[platform]["traffic"]["skus"]} == set(
            Listing.objects.filter(session=show).values_list("sku__code", flat=True)
        )

    sims: dict[str, PlatformSimulator] = {}
    try:
        for platform in PLATFORMS:
            sim, opts = _as_launched(platform, ports[platform], setup[platform])
            sims[platform] = sim.start()
            spec = traffic_spec(opts["traffic"])
            assert spec is not None and opts["traffic_every"] == setup[platform]["traffic_every"]
            assert opts["traffic_rounds"] == setup[platform]["traffic_rounds"] == 30
            # three of the demo's rounds, back to back instead of spaced out
            runs = [sim.run_show(replace(spec, seed=n, interval=0.0)) for n in range(3)]
            for run in runs:
                sim.wait_show(run, timeout=30)
        _drain((shops["taobao"],))
    finally:
        for sim in sims.values():
            sim.stop()

    assert not InboxMessage.objects.exclude(state__in=["processed", "ignored"]).exists(), list(
        InboxMessage.objects.exclude(state__in=["processed", "ignored"]).values("platform", "state", "error")
    )
    for platform in PLATFORMS:
        orders = Order.objects.filter(channel=platform, merchant=merchant)
        assert orders.exists(), platform
        assert all(o.session_id == show.pk and o.listing_id in listings for o in orders), platform
        assert not PlatformOrder.objects.filter(shop=shops[platform]).exclude(exception="").exists()
        assert sims[platform].orders  # and what the platform sold is what we hold
        ours = set(PlatformOrder.objects.filter(shop=shops[platform]).values_list("external_id", flat=True))
        assert ours == set(sims[platform].orders)
    channels = {c["channel"]: c for c in session_summary(session_id=show.pk)["channels"]}
    assert set(channels) == {"storefront", *PLATFORMS}
    for channel, row in channels.items():
        assert row["orders"] == Order.objects.filter(session=show, channel=channel).count() > 0
        assert row["units"] > 0


def test_demo_platforms_are_idempotent_and_follow_the_simulators_to_new_ports(live_server, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    _load_demo(live_server.url)
    first = {s.platform: (s.pk, s.push_token) for s in PlatformShop.objects.all()}
    ports, setup = _load_demo(live_server.url)  # a second ./run: new ports, the same shops
    shops = PlatformShop.objects.all()
    assert {s.platform: (s.pk, s.push_token) for s in shops} == first
    assert {s.platform: s.api_base_url for s in shops} == {p: f"http://127.0.0.1:{ports[p]}" for p in PLATFORMS}
    assert PlatformSkuMapping.objects.count() == 3 * Listing.objects.count()
    kuaishou = shops.get(platform="kuaishou")
    assert setup["kuaishou"]["push_url"] == f"{live_server.url}/hooks/platforms/kuaishou/{kuaishou.push_token}"
    assert {p: DEMO_SHOPS[p].shop_id for p in PLATFORMS} == {s.platform: s.shop_id for s in shops}
