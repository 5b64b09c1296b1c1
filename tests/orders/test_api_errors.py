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
