"""API answers for integrators (issue 10): a quantity over the per-buyer limit is
``over_buyer_limit`` and never ``sold_out`` while units are left."""

from __future__ import annotations

import pytest

from ..factories import make_listing, order_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_quantity_over_the_limit_is_over_buyer_limit_even_when_too_few_units_are_left(api, merchant):
    listing = make_listing(merchant, quota=3, on_hand=3, limit=2)
    assert (
        api.post("/api/v1/orders", order_body(listing.pk, buyer="first", quantity=2), format="json").status_code == 201
    )
    # One unit left; a buyer asks for three (over their limit of two): the limit is the answer.
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="greedy", quantity=3), format="json")
    assert r.status_code == 409 and r.json()["code"] == "over_buyer_limit", r.content
    # A buyer at their limit asking for more, with a unit left: the limit, not "sold out".
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="first", quantity=1), format="json")
    assert r.status_code == 409 and r.json()["code"] == "over_buyer_limit", r.content


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nope"),
        ("get", "/api"),
        ("get", "/api/v1/"),
        ("get", "/api/v1/orders/zzz"),
        ("put", "/api/v1/orders"),
        ("delete", "/api/v1/listings/1"),
    ],
)
def test_every_error_under_api_is_json_debug_or_not(api, settings, debug, method, path):
    settings.DEBUG = debug
    r = getattr(api, method)(path)
    assert r.status_code in (404, 405), (path, r.status_code)
    assert r["Content-Type"].startswith("application/json"), (path, r["Content-Type"])
    body = r.json()
    assert set(body) == {"code", "message", "extra"} and body["code"] in ("not_found", "method_not_allowed")


def test_a_trailing_slash_reaches_the_resource(api, merchant):
    listing = make_listing(merchant, quota=5, limit=2)
    assert api.get(f"/api/v1/listings/{listing.pk}/").status_code == 200
    assert api.get("/api/v1/orders/").status_code == 200
    r = api.post("/api/v1/orders/", order_body(listing.pk, buyer="slash"), format="json")
    assert r.status_code == 201, r.content


def test_api_errors_are_english_unless_chinese_is_asked_for(api, anon):
    r = anon.get("/api/v1/orders")  # DRF's own message; the site's default language is Chinese
    assert r.status_code == 401 and r.json()["message"] == "Authentication credentials were not provided."
    assert r["Content-Language"] == "en"
    r = anon.get("/api/v1/orders", HTTP_ACCEPT_LANGUAGE="zh-Hans,zh;q=0.9")
    assert r.status_code == 401 and r.json()["message"] == "身份认证信息未提供。"
    r = anon.get("/api/v1/orders", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")  # not spoken: English
    assert r.json()["message"] == "Authentication credentials were not provided."
    r = api.get("/api/v1/orders/nope", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert r.status_code == 404 and r.json()["message"] == "未找到。"


def test_the_fast_path_speaks_the_same_language(merchant, token):
    import json

    from rest_framework.test import APIClient

    from .test_bad_input import _fast

    listing = make_listing(merchant, quota=5)
    raw = json.dumps(order_body(listing.pk)).encode()
    for accept in ("", "zh-hans", "fr"):
        headers = {"Accept-Language": accept} if accept else {}
        f = _fast(token, raw, {**headers, "Content-Type": "text/plain"})
        extra = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
        d = APIClient().generic(
            "POST", "/api/v1/orders", raw, content_type="text/plain", HTTP_AUTHORIZATION=f"Token {token}", **extra
        )
        assert f[0] == d.status_code == 415, (f, d.content)
        assert f[1] == d.json(), (accept, f[1], d.json())
        f = _fast(token, raw, {**headers, "Authorization": ""})  # no credentials at all
        d = APIClient().generic("POST", "/api/v1/orders", raw, content_type="application/json", **extra)
        assert f[0] == d.status_code == 401 and f[1] == d.json(), (accept, f[1], d.json())


# --- order lookup ----------------------------------------------------------------------------


@pytest.fixture
def orders(api, merchant):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=10, limit=5)
    made = {}
    for buyer, phone, name in [
        ("b-1", "13911110000", "王小明"),
        ("b-2", "13800001002", "李华"),
        ("b-3", "13700001003", "张伟"),
    ]:
        body = order_body(listing.pk, buyer=buyer)
        body["buyer"].update(phone=phone, name=name)
        r = api.post("/api/v1/orders", body, format="json")
        assert r.status_code == 201
        made[buyer] = r.json()
    return made


def _ids(r) -> set[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.content
    return {o["id"] for o in r.json()["results"]}


@pytest.mark.parametrize(
    "written", ["13911110000", "+86 139 1111 0000", "0086-139-1111-0000", "１３９１１１１００００"]
)
def test_orders_by_buyer_phone_written_any_way(api, orders, written):
    assert _ids(api.get("/api/v1/orders", {"buyer_phone": written})) == {orders["b-1"]["id"]}
    assert _ids(api.get("/api/v1/orders", {"search": written})) == {orders["b-1"]["id"]}


def test_orders_by_buyer_search_channel_and_time(api, orders):
    assert _ids(api.get("/api/v1/orders", {"buyer": "b-2"})) == {orders["b-2"]["id"]}
    assert _ids(api.get("/api/v1/orders", {"search": "李"})) == {orders["b-2"]["id"]}
    assert _ids(api.get("/api/v1/orders", {"search": orders["b-3"]["id"]})) == {orders["b-3"]["id"]}
    assert len(_ids(api.get("/api/v1/orders", {"channel": "api"}))) == 3
    assert _ids(api.get("/api/v1/orders", {"channel": "douyin"})) == set()
    first = orders["b-1"]["created_at"]
    assert orders["b-1"]["id"] not in _ids(api.get("/api/v1/orders", {"created_after": "2099-01-01T00:00:00Z"}))
    assert len(_ids(api.get("/api/v1/orders", {"created_after": first}))) == 3
    assert len(_ids(api.get("/api/v1/orders", {"updated_before": "2000-01-02T00:00:00Z"}))) == 0
    r = api.get("/api/v1/orders", {"ordering": "-created_at"})
    assert [o["id"] for o in r.json()["results"]] == [orders[b]["id"] for b in ("b-3", "b-2", "b-1")]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"statuss": "paid"}, "unknown_parameter"),
        ({"buyer_id": "b-1"}, "unknown_parameter"),
        ({"ordering": "buyer__phone"}, "invalid"),
        ({"created_after": "9999-12-31T23:59:59-23:59"}, "invalid"),
        ({"created_after": "not a date"}, "invalid"),
        ({"channel": "wechat"}, "invalid"),
    ],
)
def test_an_unknown_or_bad_filter_is_a_400_not_ignored(api, orders, params, code):
    r = api.get("/api/v1/orders", params)
    assert r.status_code == 400 and r.json()["code"] == code, r.content


def test_catalog_lists_refuse_unknown_parameters_too(api, merchant):
    make_listing(merchant, quota=5)
    r = api.get("/api/v1/listings", {"sttus": "open"})
    assert r.status_code == 400 and r.json()["code"] == "unknown_parameter"
    assert "status" in r.json()["extra"]["allowed"]
    assert api.get("/api/v1/listings", {"status": "open", "page": 1, "page_size": 10}).status_code == 200


def test_order_lines_and_listings_carry_product_and_sku_names(api, merchant):
    listing = make_listing(merchant, quota=5)
    listing.sku.name = "红色 M"
    listing.sku.save(update_fields=["name"])
    from apps.catalog.selectors import listing_info_forget

    listing_info_forget(listing.pk)
    placed = api.post("/api/v1/orders", order_body(listing.pk), format="json").json()
    line = placed["lines"][0]
    assert line["sku_name"] == "红色 M" and line["product_name"] == listing.sku.product.name
    read = api.get(f"/api/v1/orders/{placed['id']}").json()["lines"][0]
    assert read == line
    shown = api.get(f"/api/v1/listings/{listing.pk}").json()
    assert (shown["sku_code"], shown["sku_name"], shown["product_name"]) == (
        listing.sku.code,
        "红色 M",
        listing.sku.product.name,
    )


def test_incremental_sync_pages_every_change_once_with_a_cursor(api, merchant):
    from apps.orders.services.transitions import order_transition

    listing = make_listing(merchant, quota=20, limit=1)
    ids = [
        api.post("/api/v1/orders", order_body(listing.pk, buyer=f"sync-{i}"), format="json").json()["id"]
        for i in range(7)
    ]
    r = api.get("/api/v1/orders/changes", {"updated_since": "2000-01-01T00:00:00Z", "page_size": 3})
    assert r.status_code == 200, r.content
    seen, page = [], r.json()
    while True:
        seen += [o["id"] for o in page["results"]]
        if not page["next"]:
            break
        page = api.get(page["next"]).json()
    assert seen == ids  # oldest change first, each once
    # Later: an order changes; resuming from the last cursor brings exactly that change.
    last = api.get("/api/v1/orders/changes", {"updated_since": "2000-01-01T00:00:00Z", "page_size": 100}).json()
    order_transition(public_id=ids[2], to="paid", actor="payment", reason="paid")
    resumed = api.get(last["next"]).json() if last["next"] else None
    changed = api.get(
        "/api/v1/orders/changes", {"updated_since": last["results"][-1]["updated_at"], "page_size": 100}
    ).json()
    assert ids[2] in [o["id"] for o in changed["results"]]
    assert resumed is None or ids[2] in [o["id"] for o in resumed["results"]]
    bad = api.get("/api/v1/orders/changes", {"since": "2000-01-01"})
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_parameter"
    bad = api.get("/api/v1/orders/changes", {"updated_since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_a_cursor_that_is_not_ours_is_a_400(api):
    r = api.get("/api/v1/orders/changes", {"cursor": "not-a-cursor"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor", r.content
