"""The platform shops API: connect, read, change and disconnect shops with write-only secrets;
SKU mappings; a listing's channel allocations; tenant walls."""

from __future__ import annotations

import base64
import json

import pytest
from rest_framework.test import APIClient

from apps.catalog.models import Listing
from apps.catalog.services import listing_close
from apps.platforms.models import ListingChannelAllocation, PlatformShop
from apps.platforms.selectors import resolve_sku

from ..factories import make_listing, make_sku, make_token

pytestmark = pytest.mark.django_db

MSG_KEY = base64.b64encode(b"0123456789abcdef").decode()
SECRETS = {"app_secret": "APP-SECRET-douyin-1", "access_token": "ACCESS-TOKEN-1", "msg_secret": MSG_KEY}


def body(**kw) -> dict:  # type: ignore[no-untyped-def]
    return {
        "platform": "kuaishou",
        "shop_id": "2161524184",
        "name": "快手旗舰店",
        "app_key": "ks699183844582124027",
        **SECRETS,
        "api_base_url": "",
        **kw,
    }


def no_secrets_in(response) -> None:  # type: ignore[no-untyped-def]
    raw = response.content.decode()
    for value in SECRETS.values():
        assert value not in raw, raw
    for name in SECRETS:
        assert f'"{name}"' not in raw, raw


def test_connect_a_shop_and_read_it_without_its_secrets(api: APIClient, merchant, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    r = api.post("/api/v1/platform-shops", body(), format="json")
    assert r.status_code == 201, r.content
    no_secrets_in(r)
    shop = r.json()
    assert shop["has_app_secret"] and shop["has_access_token"] and shop["has_msg_secret"]
    assert shop["gateway"] == "https://openapi.kwaixiaodian.com"
    stored = PlatformShop.objects.get(pk=shop["id"])
    assert shop["push_url"] == f"https://shop.example.com/hooks/platforms/kuaishou/{stored.push_token}"
    assert len(stored.push_token) >= 32
    assert stored.app_secret == SECRETS["app_secret"] and stored.merchant == merchant
    for response in (
        api.get("/api/v1/platform-shops"),
        api.get(f"/api/v1/platform-shops/{shop['id']}"),
        api.patch(f"/api/v1/platform-shops/{shop['id']}", {"name": "新名字"}, format="json"),
    ):
        assert response.status_code == 200, response.content
        no_secrets_in(response)
    assert api.get(f"/api/v1/platform-shops/{shop['id']}").json()["name"] == "新名字"
    assert PlatformShop.objects.get(pk=shop["id"]).app_secret == SECRETS["app_secret"]  # kept


def test_push_url_is_absolute_from_the_request_without_public_base_url_and_null_for_taobao(api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = ""
    r = api.post("/api/v1/platform-shops", body(platform="douyin", msg_secret=""), format="json")
    assert r.status_code == 201, r.content
    assert r.json()["push_url"].startswith("http://testserver/hooks/platforms/douyin/")
    r = api.post(
        "/api/v1/platform-shops",
        body(platform="taobao", shop_id="nick", msg_secret="", api_base_url="http://127.0.0.1:9100/router/rest"),
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["push_url"] is None
    assert r.json()["gateway"] == "http://127.0.0.1:9100/router/rest"


def test_patch_changes_a_secret_only_when_sent(api) -> None:  # type: ignore[no-untyped-def]
    shop_id = api.post("/api/v1/platform-shops", body(), format="json").json()["id"]
    r = api.patch(f"/api/v1/platform-shops/{shop_id}", {"access_token": "NEW-TOKEN-2"}, format="json")
    assert r.status_code == 200
    assert "NEW-TOKEN-2" not in r.content.decode()
    shop = PlatformShop.objects.get(pk=shop_id)
    assert (shop.access_token, shop.app_secret) == ("NEW-TOKEN-2", SECRETS["app_secret"])


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"platform": "wechat"}, 400, "invalid", "platform"),
        ({"msg_secret": ""}, 400, "invalid_msg_secret", "msg_secret"),
        ({"msg_secret": "not base64!"}, 400, "invalid_msg_secret", "msg_secret"),
        ({"msg_secret": base64.b64encode(b"short").decode()}, 400, "invalid_msg_secret", "msg_secret"),
        ({"api_base_url": "ftp://example.com"}, 400, "invalid_url", "api_base_url"),
        ({"api_base_url": "not a url"}, 400, "invalid_url", "api_base_url"),
        ({"app_secret": ""}, 400, "invalid", "app_secret"),
        ({"shop_id": "  "}, 400, "invalid", "shop_id"),
    ],
)
def test_bad_shops_are_refused_with_a_code(api, change, status, code, field) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/platform-shops", body(**change), format="json")
    assert r.status_code == status, r.content
    assert r.json()["code"] == code
    assert field in json.dumps(r.json()["extra"])
    assert not PlatformShop.objects.exists()


def test_msg_secret_accepts_24_and_32_byte_keys(api) -> None:  # type: ignore[no-untyped-def]
    for n, size in enumerate((24, 32)):
        key = base64.b64encode(bytes(range(size))).decode()
        r = api.post("/api/v1/platform-shops", body(shop_id=f"s{n}", msg_secret=key), format="json")
        assert r.status_code == 201, r.content


def test_a_shop_connected_twice_is_a_409_and_a_disabled_one_elsewhere_is_not(api, other_api) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/api/v1/platform-shops", body(), format="json").status_code == 201
    r = api.post("/api/v1/platform-shops", body(enabled=False), format="json")
    assert (r.status_code, r.json()["code"]) == (409, "shop_exists")
    r = other_api.post("/api/v1/platform-shops", body(), format="json")
    assert (r.status_code, r.json()["code"]) == (409, "shop_exists")  # enabled in another merchant
    r = other_api.post("/api/v1/platform-shops", body(enabled=False), format="json")
    assert r.status_code == 201, r.content  # a disabled connection does not take the shop
    r = other_api.patch(f"/api/v1/platform-shops/{r.json()['id']}", {"enabled": True}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "shop_exists")


def test_the_platform_of_a_shop_does_not_change(api) -> None:  # type: ignore[no-untyped-def]
    shop_id = api.post("/api/v1/platform-shops", body(), format="json").json()["id"]
    r = api.patch(f"/api/v1/platform-shops/{shop_id}", {"platform": "douyin"}, format="json")
    assert (r.status_code, r.json()["code"], r.json()["extra"]["field"]) == (400, "invalid", "platform")


def test_another_merchants_shop_is_a_404_and_stays_as_it_was(api, other_api) -> None:  # type: ignore[no-untyped-def]
    theirs = other_api.post("/api/v1/platform-shops", body(), format="json").json()["id"]
    for method, extra in (("get", {}), ("patch", {"name": "x"}), ("delete", {})):
        r = getattr(api, method)(f"/api/v1/platform-shops/{theirs}", extra, format="json")
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = api.get(f"/api/v1/platform-shops/{theirs}/sku-mappings")
    assert r.status_code == 404
    assert api.get("/api/v1/platform-shops").json()["results"] == []
    assert PlatformShop.objects.get(pk=theirs).name == "快手旗舰店"


def test_disconnect_deletes_the_shop(api) -> None:  # type: ignore[no-untyped-def]
    shop_id = api.post("/api/v1/platform-shops", body(), format="json").json()["id"]
    assert api.delete(f"/api/v1/platform-shops/{shop_id}").status_code == 204
    assert not PlatformShop.objects.exists()


def test_platform_shops_are_the_owners_only(merchant) -> None:  # type: ignore[no-untyped-def]
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant, role='operator')}")
    for r in (operator.get("/api/v1/platform-shops"), operator.post("/api/v1/platform-shops", body(), format="json")):
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_role")


# --- SKU mappings ------------------------------------------------------------------------------------
def test_sku_mappings_override_the_match_by_code(api, merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    shop_id = api.post("/api/v1/platform-shops", body(), format="json").json()["id"]
    shop = PlatformShop.objects.get(pk=shop_id)
    by_code, mapped = make_sku(merchant, code="LIP-RED-01"), make_sku(merchant, code="LIP-RED-02")
    assert resolve_sku(shop, platform_sku_id="174", merchant_sku_code="LIP-RED-01") == by_code
    assert resolve_sku(shop, platform_sku_id="174", merchant_sku_code="NOPE") is None

    url = f"/api/v1/platform-shops/{shop_id}/sku-mappings"
    r = api.post(url, {"platform_sku_id": "174", "platform_item_id": "34", "sku": mapped.pk}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["sku_code"] == "LIP-RED-02"
    assert resolve_sku(shop, platform_sku_id="174", merchant_sku_code="LIP-RED-01") == mapped
    r = api.post(url, {"platform_sku_id": "174", "sku": by_code.pk}, format="json")
    assert r.status_code == 200  # replaced
    assert [m["sku"] for m in api.get(url).json()["results"]] == [by_code.pk]

    theirs = make_sku(other_merchant, code="LIP-RED-01")
    r = api.post(url, {"platform_sku_id": "175", "sku": theirs.pk}, format="json")
    assert (r.status_code, r.json()["code"]) == (400, "invalid")
    # a code of another merchant never resolves
    assert resolve_sku(shop, platform_sku_id="999", merchant_sku_code="LIP-RED-01") == by_code

    r = api.delete(url)
    assert (r.status_code, r.json()["code"]) == (400, "invalid")
    assert api.delete(url + "?platform_sku_id=nope").status_code == 404
    assert api.delete(url + "?platform_sku_id=174").status_code == 204
    assert api.get(url).json()["results"] == []


# --- channel allocations --------------------------------------------------------------------------------
def test_channels_default_to_shared_and_allocations_stay_within_the_quota(merchant) -> None:  # type: ignore[no-untyped-def]
    operator = APIClient()  # whoever runs the show sets them
    operator.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant, role='operator')}")
    listing = make_listing(merchant, quota=100, open_=False)
    url = f"/api/v1/listings/{listing.pk}/channels"
    r = operator.get(url)
    assert r.status_code == 200
    assert r.json() == {
        "listing": listing.pk,
        "quota": 100,
        "allocated": 0,
        "channels": [{"platform": p, "mode": "shared", "units": 0} for p in ("douyin", "kuaishou", "taobao")],
    }
    channels = [
        {"platform": "douyin", "mode": "allocated", "units": 60},
        {"platform": "kuaishou", "mode": "allocated", "units": 40},
    ]
    r = operator.put(url, {"channels": channels}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["allocated"] == 100
    assert r.json()["channels"][2] == {"platform": "taobao", "mode": "shared", "units": 0}

    over = [{"platform": "douyin", "mode": "allocated", "units": 61}, channels[1]]
    r = operator.put(url, {"channels": over}, format="json")
    assert (r.status_code, r.json()["code"]) == (400, "allocation_exceeds_quota")
    assert r.json()["extra"] == {"field": "units", "quota": 100, "allocated": 101}
    assert ListingChannelAllocation.objects.get(listing=listing, platform="douyin").units == 60  # unchanged

    for bad in (
        [{"platform": "douyin", "mode": "allocated"}],  # units missing
        [{"platform": "douyin", "mode": "shared", "units": 5}],
        [{"platform": "douyin"}, {"platform": "douyin"}],
        [{"platform": "storefront"}],
        [{"platform": "douyin", "mode": "allocated", "units": -1}],
    ):
        r = operator.put(url, {"channels": bad}, format="json")
        assert (r.status_code, r.json()["code"]) == (400, "invalid"), (bad, r.content)

    r = operator.put(url, {"channels": [{"platform": "taobao", "mode": "allocated", "units": 0}]}, format="json")
    assert r.status_code == 200
    assert list(ListingChannelAllocation.objects.filter(listing=listing).values_list("platform", flat=True)) == [
        "taobao"
    ]

    listing_close(listing=Listing.objects.get(pk=listing.pk))
    r = operator.put(url, {"channels": []}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "invalid_listing_state")


def test_another_merchants_listing_channels_are_a_404(api, other_merchant) -> None:  # type: ignore[no-untyped-def]
    theirs = make_listing(other_merchant, quota=10, open_=False)
    assert api.get(f"/api/v1/listings/{theirs.pk}/channels").status_code == 404
    r = api.put(
        f"/api/v1/listings/{theirs.pk}/channels",
        {"channels": [{"platform": "douyin", "mode": "allocated", "units": 1}]},
        format="json",
    )
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert not ListingChannelAllocation.objects.exists()


def test_a_push_token_names_one_enabled_shop_and_sync_state_shows_in_reads(api) -> None:  # type: ignore[no-untyped-def]
    from apps.platforms.selectors import shop_by_push_token
    from apps.platforms.services import shop_sync_state_update

    shop_id = api.post("/api/v1/platform-shops", body(platform="douyin", msg_secret=""), format="json").json()["id"]
    shop = PlatformShop.objects.get(pk=shop_id)
    assert shop_by_push_token(platform="douyin", push_token=shop.push_token) == shop
    assert shop_by_push_token(platform="kuaishou", push_token=shop.push_token) is None
    assert shop_by_push_token(platform="douyin", push_token="guess") is None
    shop_sync_state_update(shop_id=shop.pk, error="sku.syncStock: timed out")
    read = api.get(f"/api/v1/platform-shops/{shop_id}").json()
    assert read["last_error"] == "sku.syncStock: timed out" and read["last_error_at"]
    shop_sync_state_update(shop_id=shop.pk, error="")
    assert api.get(f"/api/v1/platform-shops/{shop_id}").json()["last_error_at"] is None
    api.patch(f"/api/v1/platform-shops/{shop_id}", {"enabled": False}, format="json")
    assert shop_by_push_token(platform="douyin", push_token=shop.push_token) is None
