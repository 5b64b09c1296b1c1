"""Tenants are walls in the REST API: merchant A's token never lists, reads, changes, acts on or
references anything of merchant B; a missing, garbage or revoked token gets a 401 with a code.

The endpoints are read from the URL resolver, so a new route under /api/v1/ is covered (or the
first test says what it needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.merchants import authentication
from apps.merchants.authentication import forget_local
from apps.merchants.models import ApiToken
from apps.merchants.services import api_token_revoke, token_cache_key
from apps.merchants.viewsets import IdFilter, MerchantFilterBackend, MerchantScopedViewSet
from apps.orders.models import Order

from ..factories import MerchantFactory, order_body
from ..tenancy import Tenant, build_tenant, of, snapshot

pytestmark = pytest.mark.django_db

# Routes under /api/v1/ that do not take a merchant token (they carry their own signature).
NOT_TOKEN_ROUTES = {"payment-notify"}
# Token endpoints that are not viewsets over one model; each has its own tenant-wall tests.
OWN_WALL_TESTS = {
    "stock-sync": "tests/inventory/test_stock_sync.py (a code of another merchant is unknown_sku)",
    "ship-batch-list": "tests/fulfilment/test_shipping.py (another merchant's orders are unknown_orders)",
    "ship-batch-download": "tests/fulfilment/test_shipping.py (another merchant's batch file is a 404)",
    "report-slots": "tests/reports/test_slots.py (another merchant's shows are not counted)",
    "report-forecast": "tests/reports/test_forecast.py (another merchant's SKU code is unknown)",
    "report-suggestions": "tests/reports/test_suggestions.py (another merchant's SKUs never appear)",
}


@dataclass(frozen=True)
class Endpoint:
    name: str  # URL name, e.g. "listing-open"
    method: str
    action: str
    view: type[MerchantScopedViewSet]
    detail: bool

    @property
    def model(self) -> type[models.Model]:
        return self.view.queryset.model

    def path(self, obj: models.Model | None = None) -> str:
        if not self.detail:
            return reverse(self.name)
        return reverse(self.name, kwargs={self.view.lookup_url_kwarg or self.view.lookup_field: key(self.view, obj)})

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


def key(view: type[MerchantScopedViewSet], obj: models.Model) -> str:
    return str(getattr(obj, view.lookup_field))


def _routes() -> list[URLPattern]:
    found: list[URLPattern] = []

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and (prefix + str(p.pattern)).startswith("api/v1/"):
                found.append(p)

    walk(get_resolver().url_patterns, "")
    return found


ROUTES = _routes()
ENDPOINTS = sorted(
    (
        Endpoint(p.name, method, action, p.callback.cls, detail="<" in str(p.pattern) or "(?P<" in str(p.pattern))
        for p in ROUTES
        if p.name not in NOT_TOKEN_ROUTES and p.name not in OWN_WALL_TESTS
        for method, action in p.callback.actions.items()
    ),
    key=str,
)
DETAIL = [e for e in ENDPOINTS if e.detail]
LISTS = [e for e in ENDPOINTS if e.action == "list"]
CREATES = [e for e in ENDPOINTS if e.action == "create"]
PATCHES = [e for e in ENDPOINTS if e.method == "patch"]

# Body fields that name another object, by field name.
REFERENCES: dict[str, type[models.Model]] = {"product": Product, "sku": SKU, "session": LiveSession, "listing": Listing}


def valid_body(name: str, t: Tenant) -> dict[str, Any]:
    """A body each create endpoint accepts from tenant ``t``."""
    return {
        "product-list": {"name": "New", "description": ""},
        "sku-list": {"product": t.product.pk, "code": "NEW-1", "name": "", "price": "9.90", "on_hand": 3},
        "session-list": {"title": "New show", "streamer": "Host", "platforms": ["douyin"]},
        "listing-list": {"session": t.session.pk, "sku": t.sku.pk, "price": "9.90", "quota": 1},
        "order-list": order_body(t.listing.pk, buyer="new-buyer"),
        "webhook-endpoint-list": {"url": "https://erp.example.com/new", "events": ["order.paid"]},
        "carrier-account-list": {
            "carrier": "kdniao",
            "app_id": "1700001",
            "app_key": "k",
            "express": "SF",
            "sender": {
                "name": "W",
                "mobile": "13800000001",
                "province": "P",
                "city": "C",
                "district": "D",
                "detail": "1",
            },  # fmt: skip
        },
        "refund-list": {"order": t.orders[0]["id"], "kind": "refund", "amount": "0.01"},
        "platform-shop-list": {
            "platform": "taobao",
            "shop_id": f"new-{t.merchant.slug}",
            "app_key": "k",
            "app_secret": "s",
        },
    }[name]


@dataclass
class World:
    a: Tenant
    b: Tenant


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return World(build_tenant(MerchantFactory(slug="acme")), build_tenant(MerchantFactory(slug="rival")))


def target(endpoint: Endpoint, t: Tenant) -> models.Model:
    """The tenant's object an endpoint acts on (the pending order for orders, to be cancellable)."""
    if endpoint.model is Order:
        return Order.objects.get(public_id=t.orders[1]["id"])
    if endpoint.model is Listing:
        return t.scheduled
    obj = of(endpoint.model, t.merchant).order_by("pk").first()
    assert obj is not None, f"the world has no {endpoint.model.__name__} of {t.merchant.slug}"
    return obj


def call(client: APIClient, endpoint: Endpoint, path: str, body: Any = None) -> Any:
    return getattr(client, endpoint.method)(path, body if body is not None else {}, format="json")


# --- the route table itself -------------------------------------------------------------------
def test_every_api_v1_route_takes_a_merchant_token_or_is_declared() -> None:
    names = {p.name for p in ROUTES}
    assert {"product-list", "sku-detail", "sku-stock", "session-start", "listing-open", "order-cancel"} <= names
    for p in ROUTES:
        if p.name in NOT_TOKEN_ROUTES:
            continue
        cls = getattr(p.callback, "cls", None)
        if p.name in OWN_WALL_TESTS:  # an APIView that takes the merchant's token
            assert cls is not None and "IsMerchantToken" in str(cls().get_permissions()), p.name
            continue
        assert cls is not None and issubclass(cls, MerchantScopedViewSet), f"{p.name} is not merchant-scoped"


# --- another merchant's ids ---------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", DETAIL, ids=str)
def test_other_merchants_id_in_the_path_is_404_and_changes_nothing(world: World, endpoint: Endpoint) -> None:
    theirs = target(endpoint, world.b)
    body = {"delta": 5, "reason": "steal", "name": "taken", "title": "taken", "price": "1.00", "quota": 1}
    before = snapshot(world.b.merchant)
    r = call(world.a.api, endpoint, endpoint.path(theirs), body if endpoint.method != "get" else None)
    assert r.status_code == 404, (str(endpoint), r.status_code, r.content)
    assert r.json()["code"] == "not_found"
    assert snapshot(world.b.merchant) == before
    # the same request with B's own token does reach the object (the 404 above is the wall)
    if endpoint.method == "get":
        assert call(world.b.api, endpoint, endpoint.path(theirs)).status_code == 200


@pytest.mark.parametrize("endpoint", LISTS, ids=str)
def test_lists_show_only_own_rows(world: World, endpoint: Endpoint) -> None:
    r = world.a.api.get(endpoint.path(), {"page_size": 500})
    assert r.status_code == 200, r.content
    got = {str(row["id"]) for row in r.json()["results"]}
    rows = of(endpoint.model, world.a.merchant)
    if endpoint.model is Listing:  # a platform's channel pool is part of its listing, not a row of the list
        rows = rows.filter(parent__isnull=True)
    mine = {key(endpoint.view, o) for o in rows}
    assert mine and got == mine


@pytest.mark.parametrize("endpoint", LISTS, ids=str)
def test_list_filters_by_other_merchants_ids_find_nothing(world: World, endpoint: Endpoint) -> None:
    filterset = MerchantFilterBackend().get_filterset_class(endpoint.view)
    id_filters = {n: f for n, f in (filterset.base_filters.items() if filterset else []) if isinstance(f, IdFilter)}
    for name, f in id_filters.items():
        related = endpoint.model._meta.get_field(f.field_name).related_model
        theirs = of(related, world.b.merchant).first()
        r = world.a.api.get(endpoint.path(), {name: theirs.pk})
        assert r.status_code == 200, r.content
        assert r.json()["results"] == [], (str(endpoint), name)
        mine = of(related, world.a.merchant).first()
        assert world.a.api.get(endpoint.path(), {name: mine.pk}).json()["results"], (str(endpoint), name)
        # nor can a filter tell a missing id from another merchant's
        assert world.a.api.get(endpoint.path(), {name: 10**12}).status_code == 200
        assert world.a.api.get(endpoint.path(), {name: 10**30}).json()["results"] == []


@pytest.mark.parametrize("endpoint", CREATES, ids=str)
def test_create_rejects_other_merchants_objects_as_references(world: World, endpoint: Endpoint) -> None:
    a, b = world.a, world.b
    body = valid_body(endpoint.name, a)
    refs = [f for f in body if f in REFERENCES]
    assert refs or endpoint.name in (
        "product-list",
        "session-list",
        "webhook-endpoint-list",
        "platform-shop-list",
        "carrier-account-list",
        "refund-list",  # names its order by id: another merchant's is a 404 (tests/fulfilment/test_refunds.py)
    )
    count = endpoint.model._default_manager.count()
    before = snapshot(b.merchant)
    for field in refs:
        theirs = of(REFERENCES[field], b.merchant).first()
        r = a.api.post(endpoint.path(), {**body, field: theirs.pk}, format="json")
        if endpoint.model is Order:  # an order names the listing it buys from: unknown listing
            assert (r.status_code, r.json()["code"]) == (404, "listing_not_found"), r.content
        else:
            assert (r.status_code, r.json()["code"]) == (400, "invalid"), (str(endpoint), field, r.content)
        assert endpoint.model._default_manager.count() == count
    assert snapshot(b.merchant) == before
    r = a.api.post(endpoint.path(), body, format="json")
    assert r.status_code == 201, r.content
    assert endpoint.model._default_manager.count() == count + 1


def test_create_reference_error_names_the_field(world: World) -> None:
    body = {**valid_body("listing-list", world.a), "sku": world.b.sku.pk}
    r = world.a.api.post("/api/v1/listings", body, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"
    assert "sku" in r.json()["extra"]["fields"]


@pytest.mark.parametrize("endpoint", PATCHES, ids=str)
def test_patch_never_moves_an_object_to_other_merchants_objects(world: World, endpoint: Endpoint) -> None:
    mine = target(endpoint, world.a)
    before_b = snapshot(world.b.merchant)
    fk_names = [f.name for f in endpoint.model._meta.concrete_fields if f.name in REFERENCES]
    for name in fk_names:
        theirs = of(REFERENCES[name], world.b.merchant).first()
        r = world.a.api.patch(endpoint.path(mine), {name: theirs.pk}, format="json")
        assert r.status_code in (200, 400), r.content
        mine.refresh_from_db()
        assert getattr(mine, f"{name}_id") != theirs.pk
    assert snapshot(world.b.merchant) == before_b


# --- tokens -------------------------------------------------------------------------------------
BAD_AUTH = {
    "missing": None,
    "garbage": "Token not-a-token",
    "wrong scheme": "Basic dXNlcjpwYXNz",
    "no token": "Token",
    "too long": "Token " + "x" * 500,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_endpoint_answers_401_with_a_code_without_a_valid_token(world: World, endpoint: Endpoint) -> None:
    path = endpoint.path(target(endpoint, world.a) if endpoint.detail else None)
    before = snapshot(world.a.merchant)
    for what, header in BAD_AUTH.items():
        client = APIClient()
        if header is not None:
            client.credentials(HTTP_AUTHORIZATION=header)
        r = call(client, endpoint, path, valid_body(endpoint.name, world.a) if endpoint.action == "create" else None)
        assert r.status_code == 401, (str(endpoint), what, r.status_code)
        assert r.json()["code"] in ("not_authenticated", "authentication_failed"), r.json()
        assert r.json()["message"]
        assert r.headers.get("WWW-Authenticate") == "Token"
    assert snapshot(world.a.merchant) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_revoked_token_gets_401_on_every_endpoint(
    world: World, endpoint: Endpoint, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    a = world.a
    assert a.api.get("/api/v1/products").status_code == 200  # the token is cached as valid first
    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(token=a.token)
    path = endpoint.path(target(endpoint, a) if endpoint.detail else None)
    r = call(a.api, endpoint, path)
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"


def test_token_of_a_merchant_deactivated_in_admin_gets_401_at_once(
    world: World, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    a = world.a
    assert a.api.get("/api/v1/skus").status_code == 200  # the token is cached as valid first
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    admin = Client()
    admin.force_login(root)
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post(
            reverse("admin:merchants_merchant_change", args=[a.merchant.pk]),
            {"name": a.merchant.name, "slug": a.merchant.slug},  # is_active unticked
        )
    assert r.status_code == 302
    a.merchant.refresh_from_db()
    assert not a.merchant.is_active
    r = a.api.get("/api/v1/skus")
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"
    assert world.b.api.get("/api/v1/skus").status_code == 200


def test_admin_session_login_does_not_authenticate_the_api(world: World) -> None:
    """The API is for tokens: a staff browser session must not reach it (no CSRF-able writes)."""
    r = world.a.client.get("/api/v1/products")
    assert r.status_code == 401
    r = world.a.client.post("/api/v1/products", {"name": "x"}, content_type="application/json")
    assert r.status_code == 401


def test_revoked_token_stays_revoked_after_the_cache_entry_expires(world: World) -> None:
    a = world.a
    a.token.revoked_at = timezone.now()
    a.token.save()
    cache.clear()
    forget_local([a.token.key_hash])  # this process's short cache expired too
    assert a.api.get("/api/v1/products").status_code == 401


class FakeClock:
    """``time`` for ``apps.merchants.authentication``: its process-local token cache expires when
    the test moves the clock, not when a busy machine happens to be slow."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_token_revoked_by_another_process_stops_working_here_within_the_local_ttl(  # type: ignore[no-untyped-def]
    world: World, settings, monkeypatch
) -> None:
    """Another server process revokes (database + Redis marker); this process had the token in
    its own short cache: it keeps answering for at most TOKEN_LOCAL_CACHE_SECONDS, then 401."""
    clock = FakeClock()
    monkeypatch.setattr(authentication, "time", clock)
    settings.TOKEN_LOCAL_CACHE_SECONDS = 0.5
    a = world.a
    forget_local([a.token.key_hash])
    assert a.api.get("/api/v1/products").status_code == 200  # now in this process's cache
    ApiToken.objects.filter(pk=a.token.pk).update(revoked_at=timezone.now())
    cache.set(token_cache_key(a.token.key_hash), "-", timeout=60)  # what api_token_revoke does there
    assert a.api.get("/api/v1/products").status_code == 200  # still within the local TTL
    clock.now += 0.49
    assert a.api.get("/api/v1/products").status_code == 200  # still within the local TTL
    clock.now += 0.02  # the local entry is past its TTL
    r = a.api.get("/api/v1/products")
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"
