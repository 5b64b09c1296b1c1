"""Platform shops in the back office: secrets as password inputs that never show the stored value
and keep it when left blank, the push URL to copy, sync state read-only, SKU mappings inline, a
listing's channel allocations inline; in Chinese for a zh-hans merchant."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from apps.merchants.services import staff_create
from apps.platforms.models import ListingChannelAllocation, PlatformShop
from apps.platforms.services import shop_create

from ..factories import make_listing, make_sku

pytestmark = pytest.mark.django_db

ADD = "/admin/platforms/platformshop/add/"
MSG_KEY = base64.b64encode(b"0123456789abcdef").decode()


def client_for(merchant, role: str = "owner", lang: str = "zh-hans") -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(
        staff_create(merchant=merchant, username=f"{role}-{lang}", password="pw-long-enough-1", role=role)
    )
    return client


def form(**kw) -> dict:  # type: ignore[no-untyped-def]
    data = {
        "platform": "douyin",
        "shop_id": "1234567",
        "name": "抖店旗舰店",
        "app_key": "app-key-1",
        "app_secret": "ADMIN-APP-SECRET",
        "access_token": "ADMIN-ACCESS-TOKEN",
        "msg_secret": "",
        "api_base_url": "",
        "enabled": "on",
        "sku_mappings-TOTAL_FORMS": "0",
        "sku_mappings-INITIAL_FORMS": "0",
        "sku_mappings-MIN_NUM_FORMS": "0",
        "sku_mappings-MAX_NUM_FORMS": "1000",
    }
    data.update(kw)
    return data


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_add_a_shop_then_its_page_shows_the_push_url_and_never_the_secrets(merchant, lang, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    client = client_for(merchant, lang=lang)
    page = client.get(ADD)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="password" name="app_secret"' in html
    if lang == "zh-hans":
        assert "平台店铺" in html and "应用密钥" in html
    r = client.post(ADD, form())
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    shop = PlatformShop.objects.get()
    assert (shop.merchant, shop.app_secret, shop.access_token) == (merchant, "ADMIN-APP-SECRET", "ADMIN-ACCESS-TOKEN")
    change = client.get(f"/admin/platforms/platformshop/{shop.pk}/change/")
    assert change.status_code == 200
    html = change.content.decode()
    assert "ADMIN-APP-SECRET" not in html and "ADMIN-ACCESS-TOKEN" not in html
    assert f'readonly value="https://shop.example.com/hooks/platforms/douyin/{shop.push_token}"' in html
    if lang == "zh-hans":
        assert "推送地址" in html and "同步状态" in html


def test_blank_secrets_keep_the_stored_ones_and_a_new_value_replaces_it(merchant) -> None:  # type: ignore[no-untyped-def]
    client = client_for(merchant)
    shop = shop_create(
        merchant=merchant, platform="douyin", shop_id="1", app_key="k", app_secret="OLD", access_token="TOK"
    )
    url = f"/admin/platforms/platformshop/{shop.pk}/change/"
    r = client.post(url, form(shop_id="1", app_key="k", app_secret="", access_token="", name="改名"))
    assert r.status_code == 302, r.context["adminform"].form.errors
    shop.refresh_from_db()
    assert (shop.name, shop.app_secret, shop.access_token) == ("改名", "OLD", "TOK")
    r = client.post(url, form(shop_id="1", app_key="k", app_secret="NEW", access_token=""))
    assert r.status_code == 302
    shop.refresh_from_db()
    assert (shop.app_secret, shop.access_token) == ("NEW", "TOK")


def test_kuaishou_needs_a_valid_message_key_and_a_duplicate_is_a_form_error(merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    client = client_for(merchant)
    r = client.post(ADD, form(platform="kuaishou", msg_secret="nope"))
    assert r.status_code == 200
    assert "msg_secret" in r.context["adminform"].form.errors
    r = client.post(ADD, form(platform="kuaishou", msg_secret=MSG_KEY))
    assert r.status_code == 302
    assert PlatformShop.objects.get().msg_secret == MSG_KEY
    shop_create(merchant=other_merchant, platform="taobao", shop_id="nick", app_key="k", app_secret="s")
    r = client.post(ADD, form(platform="taobao", shop_id="nick"))
    assert r.status_code == 200
    assert "shop_id" in r.context["adminform"].form.errors  # enabled elsewhere
    assert PlatformShop.objects.count() == 2


def test_sku_mappings_inline_saves_and_refuses_another_merchants_sku(merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    client = client_for(merchant)
    shop = shop_create(merchant=merchant, platform="douyin", shop_id="1", app_key="k", app_secret="s")
    mine, theirs = make_sku(merchant, code="MINE-1"), make_sku(other_merchant, code="THEIRS-1")
    url = f"/admin/platforms/platformshop/{shop.pk}/change/"
    inline = {
        "sku_mappings-TOTAL_FORMS": "1",
        "sku_mappings-0-platform_sku_id": "174",
        "sku_mappings-0-platform_item_id": "",
        "sku_mappings-0-sku": str(theirs.pk),
    }
    r = client.post(url, form(shop_id="1", app_key="k", app_secret="", **inline))
    assert r.status_code == 200 and not shop.sku_mappings.exists()
    r = client.post(
        url, form(shop_id="1", app_key="k", app_secret="", **{**inline, "sku_mappings-0-sku": str(mine.pk)})
    )
    assert r.status_code == 302
    assert list(shop.sku_mappings.values_list("platform_sku_id", "sku_id")) == [("174", mine.pk)]


def test_an_operator_cannot_open_platform_shops(merchant) -> None:  # type: ignore[no-untyped-def]
    assert client_for(merchant, role="operator").get(ADD).status_code == 403


def _listing_form(listing, rows: list[tuple[str, str, str]]) -> dict:  # type: ignore[no-untyped-def]
    data = {
        "price": "9.90",
        "quota": str(listing.quota),
        "per_buyer_limit": "1",
        "payment_window_minutes": "15",
        "opens_at_0": "",
        "opens_at_1": "",
        "closes_at_0": "",
        "closes_at_1": "",
        "channel_allocations-TOTAL_FORMS": str(len(rows)),
        "channel_allocations-INITIAL_FORMS": "0",
        "channel_allocations-MIN_NUM_FORMS": "0",
        "channel_allocations-MAX_NUM_FORMS": "3",
    }
    for n, (platform, mode, units) in enumerate(rows):
        data |= {
            f"channel_allocations-{n}-platform": platform,
            f"channel_allocations-{n}-mode": mode,
            f"channel_allocations-{n}-units": units,
        }
    return data


def test_listing_page_sets_channel_allocations_within_the_quota(merchant) -> None:  # type: ignore[no-untyped-def]
    client = client_for(merchant, role="operator")
    listing = make_listing(merchant, quota=50, open_=False)
    url = f"/admin/catalog/listing/{listing.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and "平台渠道" in page.content.decode()
    r = client.post(url, _listing_form(listing, [("douyin", "allocated", "30"), ("kuaishou", "allocated", "21")]))
    assert r.status_code == 200
    assert "超过" in r.content.decode()  # the formset's error, in Chinese
    assert not ListingChannelAllocation.objects.exists()
    r = client.post(url, _listing_form(listing, [("douyin", "allocated", "30"), ("taobao", "shared", "0")]))
    assert r.status_code == 302, r.context and r.context["inline_admin_formsets"][0].formset.errors
    assert sorted(ListingChannelAllocation.objects.values_list("platform", "mode", "units")) == [
        ("douyin", "allocated", 30),
        ("taobao", "shared", 0),
    ]
