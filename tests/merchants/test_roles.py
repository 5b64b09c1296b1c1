"""Staff roles are walls too: owner, operator, customer service and analyst each reach exactly what
their role allows, in the admin and through the API, and a forged request changes nothing.

The expectations below are written out by hand from the product's description of the roles (not
derived from ``apps.merchants.roles``), so a change to the capability table that breaks a promise
fails here. Like the tenant-wall tests, every registered ModelAdmin and every API view must be
listed or declared: a new one cannot slip through unguarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from apps.catalog.models import Listing, LiveSession, Product
from apps.fraud.models import RiskAssessment
from apps.merchants import roles
from apps.merchants.admin_scoping import MerchantScopedAdmin
from apps.merchants.models import ApiToken, Membership
from apps.merchants.services import api_token_create, staff_create
from apps.orders.models import Buyer, Order, OrderStatus

from ..factories import MerchantFactory, ProductFactory, order_body
from ..tenancy import Tenant, build_tenant, label, merchant_lookup, snapshot
from .test_admin_isolation import _management

pytestmark = pytest.mark.django_db

OWNER, OPERATOR, CS, ANALYST = "owner", "operator", "customer_service", "analyst"
ALL = frozenset({OWNER, OPERATOR, CS, ANALYST})
WRITERS = frozenset({OWNER, OPERATOR})  # orders and shows, products and stock
ROLE_IDS = [OWNER, OPERATOR, CS, ANALYST]
REGISTRY = admin.site._registry

# Who may open each admin's list (every registered tenant admin must be here).
VIEW = {
    "orders.Order": ALL,
    "orders.Buyer": ALL,
    "orders.Payment": ALL,
    "catalog.Product": ALL,
    "catalog.SKU": ALL,
    "catalog.LiveSession": ALL,
    "catalog.Listing": ALL,
    "inventory.Stock": ALL,
    "inventory.StockMovement": ALL,
    "merchants.Merchant": ALL,
    "merchants.Membership": frozenset({OWNER}),
    "merchants.ApiToken": frozenset({OWNER}),
    "webhooks.WebhookEndpoint": frozenset({OWNER}),
    "webhooks.WebhookDelivery": frozenset({OWNER}),
    "platforms.PlatformShop": frozenset({OWNER}),
    "platforms.PlatformOrder": ALL,
    "platforms.InboxMessage": frozenset({OWNER}),
    "platforms.PlatformSkuLink": frozenset({OWNER}),
    "fulfilment.CarrierAccount": frozenset({OWNER}),
    "fulfilment.ShipBatch": ALL,
    "fulfilment.Parcel": ALL,
    "fulfilment.FulfilmentException": ALL,  # the exception queue, beside the orders
    "fulfilment.FulfilmentSettings": ALL,
    "fulfilment.CarrierPush": frozenset({OWNER}),  # with the carrier account it came to
    "fulfilment.RefundRequest": ALL,  # after-sales, beside the orders
    "fulfilment.RefundNotice": ALL,  # the provider's callbacks, as its payment notifications
    "notifications.SmsAccount": frozenset({OWNER}),  # an AccessKey secret
    "notifications.SmsTemplate": frozenset({OWNER}),
    "notifications.SmsOptOut": ALL,  # beside the buyers
    "notifications.SmsMessage": ALL,  # what a buyer was told about their order
    "fraud.RiskRule": ALL,
    "fraud.RiskPolicy": ALL,
    "fraud.RiskAssessment": ALL,
}
# Who gets the add form.
ADD = {
    "catalog.Product": WRITERS,
    "catalog.SKU": WRITERS,
    "catalog.LiveSession": WRITERS,
    "catalog.Listing": WRITERS,
    "inventory.StockMovement": WRITERS,
    "merchants.ApiToken": frozenset({OWNER}),
    "merchants.Membership": frozenset({OWNER}),
    "orders.Order": frozenset(),  # orders come from buyers
    "orders.Buyer": frozenset(),
    "orders.Payment": frozenset(),
    "inventory.Stock": frozenset(),
    "merchants.Merchant": frozenset(),
    "webhooks.WebhookEndpoint": frozenset({OWNER}),
    "webhooks.WebhookDelivery": frozenset(),
    "platforms.PlatformShop": frozenset({OWNER}),
    "platforms.PlatformOrder": frozenset(),  # the platforms send them
    "platforms.InboxMessage": frozenset(),
    "platforms.PlatformSkuLink": frozenset(),  # links come from mappings and orders
    "fulfilment.CarrierAccount": frozenset({OWNER}),
    "fulfilment.ShipBatch": frozenset(),  # made by the order list's action or the API
    "fulfilment.Parcel": frozenset(),  # made by batches
    "fulfilment.FulfilmentException": frozenset(),  # opened by fulfilment
    "fulfilment.FulfilmentSettings": frozenset(),  # made with the defaults when first used
    "fulfilment.CarrierPush": frozenset(),  # carriers send them
    "fulfilment.RefundRequest": frozenset(),  # asked by buyers, the API and the system
    "fulfilment.RefundNotice": frozenset(),  # the payment provider sends them
    "notifications.SmsAccount": frozenset({OWNER}),
    "notifications.SmsTemplate": frozenset({OWNER}),
    "notifications.SmsOptOut": frozenset({OWNER}),  # buyers' records: only the owner adds
    "notifications.SmsMessage": frozenset(),  # messages come from order changes
    "fraud.RiskRule": frozenset(),  # the catalogue's rules, one row each, made with the merchant
    "fraud.RiskPolicy": frozenset(),
    "fraud.RiskAssessment": frozenset(),  # risk control writes them
}


def url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@dataclass
class Member:
    role: str
    user: Any
    client: Client
    api: APIClient
    token: ApiToken


@dataclass
class World:
    a: Tenant
    b: Tenant
    members: dict[str, Member]


def _member(tenant: Tenant, role: str) -> Member:
    user = staff_create(merchant=tenant.merchant, username=f"{role}-{tenant.merchant.slug}", password="", role=role)
    client = Client()
    client.force_login(user)
    token, raw = api_token_create(merchant=tenant.merchant, name=f"{role} tool", role=role)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return Member(role, user, client, api, token)


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    a = build_tenant(MerchantFactory(slug="acme", name="Acme"))
    b = build_tenant(MerchantFactory(slug="rival", name="Rival"))
    return World(a, b, {role: _member(a, role) for role in ROLE_IDS})


def action_names(response: Any) -> set[str]:
    form = response.context["action_form"]  # None when no action is left
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


# --- every admin and every API view is covered -----------------------------------------------------
def test_every_tenant_admin_declares_a_role_area_and_is_in_the_tables() -> None:
    for model, model_admin in REGISTRY.items():
        if not merchant_lookup(model):
            continue
        assert isinstance(model_admin, MerchantScopedAdmin)
        assert model_admin.role_area in roles.AREAS, f"{label(model)}: declare role_area"
        assert label(model) in VIEW and label(model) in ADD, f"add {label(model)} to VIEW and ADD"


def _api_views() -> list[tuple[str, Any]]:
    found = []

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and (prefix + str(p.pattern)).startswith("api/v1/"):
                cls = getattr(p.callback, "cls", None)
                if cls is not None:
                    found.append((prefix + str(p.pattern), cls))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_token_api_view_declares_a_role_area() -> None:
    views = _api_views()
    assert len(views) > 5
    for route, cls in views:
        if cls.permission_classes == []:  # public: signed payment notifications and the like
            continue
        assert getattr(cls, "role_area", None) in roles.AREAS, f"{route} ({cls.__name__}): declare role_area"
        for action, (area, verb) in getattr(cls, "role_actions", {}).items():
            assert area in roles.AREAS and verb in roles.VERBS, (route, action)


def test_capability_table_names_only_known_roles_areas_and_verbs() -> None:
    assert set(roles.CAPABILITIES) == set(roles.ROLES) == ALL
    for areas in roles.CAPABILITIES.values():
        assert set(areas) <= set(roles.AREAS)
        for verbs in areas.values():
            assert verbs <= set(roles.VERBS)
            assert not verbs or "view" in verbs  # whoever may do something there may see it


# --- admin: index, lists, add forms ------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLE_IDS)
def test_admin_lists_and_add_forms_follow_the_role(world: World, role: str) -> None:
    client = world.members[role].client
    for model in REGISTRY:
        if label(model) not in VIEW:
            continue
        r = client.get(url(model, "changelist"))
        expected = 200 if role in VIEW[label(model)] else 403
        assert r.status_code == expected, (role, label(model), "changelist", r.status_code)
        r = client.get(url(model, "add"))
        expected = 200 if role in ADD[label(model)] else 403
        assert r.status_code == expected, (role, label(model), "add", r.status_code)


@pytest.mark.parametrize("role", ROLE_IDS)
def test_admin_index_shows_only_the_roles_areas(world: World, role: str) -> None:
    r = world.members[role].client.get("/admin/")
    assert r.status_code == 200
    shown = {m["object_name"] for app in r.context["app_list"] for m in app["models"]}
    expected = {label(m).split(".")[1] for m in REGISTRY if role in VIEW.get(label(m), ())}
    assert shown == expected
    adds = {m["object_name"] for app in r.context["app_list"] for m in app["models"] if m.get("add_url")}
    assert adds == {label(m).split(".")[1] for m in REGISTRY if role in ADD.get(label(m), ())}


# (model, add form) for each admin whose add is role-restricted; a refused POST adds nothing.
ADD_POSTS = {
    "catalog.Product": (Product, lambda t: {"name": "Smuggled", "description": "", "is_active": "on"}),
    "catalog.LiveSession": (
        LiveSession,
        lambda t: {
            "title": "Smuggled",
            "streamer": "x",
            "platforms": ["storefront"],
            "scheduled_at_0": "2030-01-01",
            "scheduled_at_1": "20:00:00",
        },
    ),
    "merchants.ApiToken": (ApiToken, lambda t: {"name": "smuggled", "role": "owner"}),
}


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("target", sorted(ADD_POSTS))
def test_forged_add_post_is_refused_and_adds_nothing(world: World, role: str, target: str) -> None:
    model, data = ADD_POSTS[target]
    mgmt = _management(world.a.client.get(url(model, "add")))  # the owner's page: every inline
    count = model._default_manager.count()
    r = world.members[role].client.post(url(model, "add"), {**data(world.a), **mgmt})
    if role in ADD[target]:
        assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r.status_code
        assert model._default_manager.count() == count + 1
    else:
        assert r.status_code == 403
        assert model._default_manager.count() == count


# --- admin: change pages (view-only vs editable) and forged change POSTs -----------------------------
CHANGE = {
    # model label: (object, a change POST, the field it would change, roles that may save)
    "catalog.Product": (lambda t: t.product, lambda t: {"name": "Renamed", "is_active": "on"}, "name", WRITERS),
    "catalog.LiveSession": (
        lambda t: t.session,
        lambda t: {"title": "Renamed", "streamer": "Host", "platforms": ["storefront"]},
        "title",
        WRITERS,
    ),
    "orders.Buyer": (
        lambda t: Buyer.objects.filter(merchant=t.merchant).first(),
        lambda t: {"name": "Renamed", "phone": ""},
        "name",
        frozenset({OWNER, OPERATOR, CS}),
    ),
    "merchants.Merchant": (lambda t: t.merchant, lambda t: {"name": "Renamed"}, "name", frozenset({OWNER})),
}


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("target", sorted(CHANGE))
def test_change_page_is_editable_only_for_roles_that_may_change(world: World, role: str, target: str) -> None:
    get_obj, data, field, may = CHANGE[target]
    obj = get_obj(world.a)
    client = world.members[role].client
    model = type(obj)
    page = client.get(url(model, "change", obj.pk))
    assert page.status_code == 200  # every role here may see it
    assert page.context["has_change_permission"] is (role in may)
    mgmt = _management(world.a.client.get(url(model, "change", obj.pk)))
    before = getattr(obj, field)
    r = client.post(url(model, "change", obj.pk), {**data(world.a), **mgmt})
    obj.refresh_from_db()
    if role in may:
        assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r.status_code
        assert getattr(obj, field) == "Renamed"
    else:
        assert r.status_code == 403
        assert getattr(obj, field) == before


@pytest.mark.parametrize("role", ROLE_IDS)
def test_delete_is_refused_to_roles_that_may_not_delete_and_deletes_nothing(world: World, role: str) -> None:
    spare = ProductFactory(merchant=world.a.merchant, name="Spare")
    client = world.members[role].client
    r = client.post(url(Product, "delete", spare.pk), {"post": "yes"})
    assert Product.objects.filter(pk=spare.pk).exists() is (role not in WRITERS)
    assert r.status_code == (302 if role in WRITERS else 403)


# --- admin: actions --------------------------------------------------------------------------------
# (model, action, the object it acts on, how to tell it acted, roles that may)
ACTIONS = {
    "cancel_orders": (
        Order,
        lambda t: Order.objects.get(public_id=t.orders[1]["id"]),  # pending payment
        lambda o: o.status == OrderStatus.CANCELLED,
        frozenset({OWNER, OPERATOR, CS}),
    ),
    "confirm_orders": (
        Order,
        lambda t: Order.objects.get(public_id=t.orders[0]["id"]),  # paid
        lambda o: o.status == OrderStatus.CONFIRMED,
        WRITERS,
    ),
    "open_listings": (
        Listing,
        lambda t: t.scheduled,
        lambda x: x.status == Listing.Status.OPEN,
        WRITERS,
    ),
    "end_shows": (
        LiveSession,
        lambda t: t.session,
        lambda s: s.status == LiveSession.Status.ENDED,
        WRITERS,
    ),
    "revoke_tokens": (ApiToken, lambda t: t.token, lambda tok: tok.revoked_at is not None, frozenset({OWNER})),
    "approve_selected": (
        RiskAssessment,
        lambda t: RiskAssessment.objects.get(public_id=t.orders[1]["id"]),  # flagged, pending payment
        lambda a: a.review_outcome == "approved",
        WRITERS,
    ),
    "reject_selected": (
        RiskAssessment,
        lambda t: RiskAssessment.objects.get(public_id=t.orders[1]["id"]),
        lambda a: a.review_outcome == "rejected" and a.order.status == OrderStatus.CANCELLED,
        WRITERS,
    ),
    "delete_selected": (
        Product,
        lambda t: ProductFactory(merchant=t.merchant, name="Spare"),
        None,  # acted: the row is gone
        WRITERS,
    ),
}


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_admin_action_is_offered_and_runs_only_for_roles_that_may(world: World, role: str, action: str) -> None:
    model, get_obj, acted, may = ACTIONS[action]
    obj = get_obj(world.a)
    client = world.members[role].client
    listing = client.get(url(model, "changelist"))
    if listing.status_code == 200:
        assert (action in action_names(listing)) is (role in may), (role, action)
    else:
        assert listing.status_code == 403 and role not in may
    before = snapshot(world.a.merchant)
    data = {"action": action, "_selected_action": [obj.pk], "index": "0", "post": "yes"}
    r = client.post(url(model, "changelist"), data)  # forged when the role may not
    if role in may:
        assert r.status_code == 302
        if acted is None:
            assert not model._default_manager.filter(pk=obj.pk).exists()
        else:
            obj.refresh_from_db()
            assert acted(obj), (role, action)
    else:
        assert r.status_code in (200, 302, 403)
        assert snapshot(world.a.merchant) == before, (role, action)


# --- a login with different roles in two merchants ------------------------------------------------
@pytest.fixture
def owner_of_a_analyst_of_b(world: World) -> Client:
    user = staff_create(merchant=world.a.merchant, username="both", password="", role=OWNER)
    staff_create(merchant=world.b.merchant, username="both", password="", role=ANALYST)
    client = Client()
    client.force_login(user)
    return client


def test_two_merchants_the_role_is_that_of_the_objects_merchant(world: World, owner_of_a_analyst_of_b: Client) -> None:
    client, a, b = owner_of_a_analyst_of_b, world.a, world.b
    # reads: both merchants' products and orders
    r = client.get(url(Product, "changelist"))
    assert {p.pk for p in r.context["cl"].queryset} == {a.product.pk, b.product.pk}
    # B's product: a page without Save; a forged save is refused
    page = client.get(url(Product, "change", b.product.pk))
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert client.post(url(Product, "change", b.product.pk), {"name": "taken"}).status_code == 403
    b.product.refresh_from_db()
    assert b.product.name == "Product-rival"
    # A's product: editable
    assert client.get(url(Product, "change", a.product.pk)).context["has_change_permission"] is True
    # new objects only in A
    add = client.get(url(Product, "add"))
    assert set(add.context["adminform"].form.fields["merchant"].queryset) == {a.merchant}
    # cancel both merchants' pending orders at once: only A's is cancelled
    a_pending = Order.objects.get(public_id=a.orders[1]["id"])
    b_pending = Order.objects.get(public_id=b.orders[1]["id"])
    before_b = snapshot(b.merchant)
    r = client.post(
        url(Order, "changelist"),
        {"action": "cancel_orders", "_selected_action": [a_pending.pk, b_pending.pk], "index": "0"},
    )
    assert r.status_code == 302
    a_pending.refresh_from_db()
    assert a_pending.status == OrderStatus.CANCELLED
    assert snapshot(b.merchant) == before_b
    # tokens: A's only (an analyst of B has no tokens area there)
    r = client.get(url(ApiToken, "changelist"))
    assert {t.merchant_id for t in r.context["cl"].queryset} == {a.merchant.pk}
    assert client.get(url(ApiToken, "change", b.token.pk)).status_code in (302, 403, 404)


# --- memberships: the owner manages their staff --------------------------------------------------
def test_owner_adds_a_staff_login_with_a_role_and_it_can_sign_in(world: World) -> None:
    owner = world.members[OWNER].client
    r = owner.post(
        url(Membership, "add"),
        {"username": "new-cs", "password": "a-long-pass-phrase-9", "role": CS},
    )
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r.status_code
    m = Membership.objects.get(user__username="new-cs")
    assert (m.merchant, m.role) == (world.a.merchant, CS)
    login = Client()
    r = login.post("/admin/login/", {"username": "new-cs", "password": "a-long-pass-phrase-9", "next": "/admin/"})
    assert r.status_code == 302 and login.get(url(Order, "changelist")).status_code == 200
    assert login.get(url(Product, "add")).status_code == 403  # customer service


def test_owner_cannot_take_an_existing_login_of_another_merchant(world: World) -> None:
    owner = world.members[OWNER].client
    r = owner.post(url(Membership, "add"), {"username": "staff-rival", "password": "a-long-pass-phrase-9", "role": CS})
    assert r.status_code == 200 and "username" in r.context["adminform"].form.errors
    assert not Membership.objects.filter(user__username="staff-rival", merchant=world.a.merchant).exists()
    assert get_user_model().objects.get(username="staff-rival").check_password("pw-long-enough-1")


def test_owner_sees_and_changes_only_own_merchants_memberships(world: World) -> None:
    owner = world.members[OWNER].client
    r = owner.get(url(Membership, "changelist"))
    assert {m.merchant_id for m in r.context["cl"].queryset} == {world.a.merchant.pk}
    theirs = Membership.objects.get(user=world.b.staff)
    assert owner.get(url(Membership, "change", theirs.pk)).status_code in (302, 403, 404)
    analyst = Membership.objects.get(user=world.members[ANALYST].user)
    r = owner.post(url(Membership, "change", analyst.pk), {"role": OPERATOR})
    assert r.status_code == 302
    analyst.refresh_from_db()
    assert analyst.role == OPERATOR
    # the change reaches the admin at once
    assert world.members[ANALYST].client.get(url(Product, "add")).status_code == 200


def test_owner_cannot_demote_or_remove_themselves(world: World) -> None:
    owner = world.members[OWNER]
    own = Membership.objects.get(user=owner.user)
    assert owner.client.get(url(Membership, "change", own.pk)).context["has_change_permission"] is False
    assert owner.client.post(url(Membership, "change", own.pk), {"role": ANALYST}).status_code == 403
    assert owner.client.post(url(Membership, "delete", own.pk), {"post": "yes"}).status_code == 403
    own.refresh_from_db()
    assert own.role == OWNER


def test_a_merchant_keeps_an_owner_even_against_a_superuser(world: World) -> None:
    root_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    root = Client()
    root.force_login(root_user)
    # acme has two owners (its tenant login and the role fixture's): one may go
    second = Membership.objects.get(user=world.members[OWNER].user)
    assert root.post(url(Membership, "change", second.pk), {"role": OPERATOR}).status_code == 302
    last = Membership.objects.get(user=world.a.staff)
    r = root.post(url(Membership, "change", last.pk), {"role": ANALYST})
    assert r.status_code == 200 and "role" in r.context["adminform"].form.errors
    assert root.post(url(Membership, "delete", last.pk), {"post": "yes"}).status_code == 403
    last.refresh_from_db()
    assert last.role == OWNER


@pytest.mark.parametrize("role", [OPERATOR, CS, ANALYST])
def test_only_owners_manage_memberships(world: World, role: str) -> None:
    member = world.members[role]
    own = Membership.objects.get(user=member.user)
    r = member.client.post(url(Membership, "change", own.pk), {"role": OWNER})
    assert r.status_code == 403
    own.refresh_from_db()
    assert own.role == role


# --- API: tokens carry a role -----------------------------------------------------------------------
# (method, path, body, roles that may, the status they get); the others get 403 insufficient_role.
def _api_cases(t: Tenant) -> list[tuple[str, str, Any, frozenset[str], int]]:
    pending, paid = t.orders[1]["id"], t.orders[0]["id"]
    return [
        ("get", "/api/v1/orders", None, ALL, 200),
        ("get", f"/api/v1/orders/{paid}", None, ALL, 200),
        ("get", "/api/v1/orders/changes", None, ALL, 200),
        ("get", "/api/v1/products", None, ALL, 200),
        ("get", "/api/v1/skus", None, ALL, 200),
        ("get", "/api/v1/sessions", None, ALL, 200),
        ("get", "/api/v1/listings", None, ALL, 200),
        ("post", "/api/v1/orders", order_body(t.listing.pk, buyer="role-buyer"), WRITERS, 201),
        ("post", f"/api/v1/orders/{pending}/cancel", {"reason": "buyer asked"}, frozenset({OWNER, OPERATOR, CS}), 200),
        ("post", "/api/v1/products", {"name": "New"}, WRITERS, 201),
        ("patch", f"/api/v1/products/{t.product.pk}", {"name": "Renamed"}, WRITERS, 200),
        ("post", f"/api/v1/skus/{t.sku.pk}/stock", {"delta": 5, "reason": "delivery"}, WRITERS, 200),
        ("post", "/api/v1/sessions", {"title": "S", "streamer": "H", "platforms": ["storefront"]}, WRITERS, 201),
        ("post", f"/api/v1/listings/{t.scheduled.pk}/open", None, WRITERS, 200),
        ("post", f"/api/v1/sessions/{t.session.pk}/end", None, WRITERS, 200),
        (
            "post",
            "/api/v1/stock/sync",
            {"sync_id": "erp-role", "items": [{"sku": t.sku.code, "delta": 1}]},
            WRITERS,
            200,
        ),
        ("get", "/api/v1/carrier-accounts", None, frozenset({OWNER}), 200),
        ("get", f"/api/v1/carrier-accounts/{t.carrier_account.pk}", None, frozenset({OWNER}), 200),
        (
            "patch",
            f"/api/v1/carrier-accounts/{t.carrier_account.pk}",
            {"name": "Renamed", "is_default": True},
            frozenset({OWNER}),
            200,
        ),
        (
            "post",
            "/api/v1/carrier-accounts",
            {
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
            frozenset({OWNER}),
            201,
        ),
        ("get", "/api/v1/webhook-endpoints", None, frozenset({OWNER}), 200),
        ("get", "/api/v1/webhook-deliveries", None, frozenset({OWNER}), 200),
        (
            "post",
            "/api/v1/webhook-endpoints",
            {"url": "https://erp.example.com/hook", "events": ["order.paid"]},
            frozenset({OWNER}),
            201,
        ),
    ]


@pytest.mark.parametrize("role", ROLE_IDS)
def test_api_token_role_decides_what_it_may_do(world: World, role: str) -> None:
    api = world.members[role].api
    for method, path, body, may, ok in _api_cases(world.a):
        before = snapshot(world.a.merchant)
        r = getattr(api, method)(path, body, format="json") if body is not None else getattr(api, method)(path)
        if role in may:
            assert r.status_code == ok, (role, method, path, r.content)
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
            err = r.json()
            assert err["code"] == "insufficient_role", err
            assert err["extra"]["role"] == role and err["extra"]["roles_allowed"] == sorted(may, key=ROLE_IDS.index), (
                err
            )
            assert snapshot(world.a.merchant) == before, (role, method, path)


def test_api_token_of_another_merchant_still_sees_nothing_whatever_its_role(world: World) -> None:
    token, raw = api_token_create(merchant=world.b.merchant, name="rival owner", role=OWNER)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.get(f"/api/v1/orders/{world.a.orders[0]['id']}").status_code == 404
    r = api.post(f"/api/v1/orders/{world.a.orders[1]['id']}/cancel", {"reason": "x"}, format="json")
    assert r.status_code == 404


def test_new_tokens_are_operators_and_the_role_is_in_the_admin_form(world: World) -> None:
    token, _ = api_token_create(merchant=world.a.merchant, name="default")
    assert token.role == OPERATOR
    r = world.members[OWNER].client.post(url(ApiToken, "add"), {"name": "reader", "role": ANALYST})
    assert r.status_code == 302
    assert ApiToken.objects.get(name="reader").role == ANALYST
    page = world.members[OWNER].client.get(url(ApiToken, "change", ApiToken.objects.get(name="reader").pk))
    assert "role" not in page.context["adminform"].form.fields  # fixed for the token's life


def test_unknown_role_is_refused_by_the_services(world: World) -> None:
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        api_token_create(merchant=world.a.merchant, name="x", role="admin")
    assert exc.value.code == "unknown_role"
    with pytest.raises(ApplicationError):
        staff_create(merchant=world.a.merchant, username="x", password="", role="staff")


def test_openapi_documents_403_insufficient_role_on_writes(world: World) -> None:
    schema = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/json").content)
    paths = schema["paths"]
    assert "403" in paths["/api/v1/orders"]["post"]["responses"]
    assert "403" in paths["/api/v1/products"]["post"]["responses"]
    assert "403" not in paths["/api/v1/products"]["get"]["responses"]


# --- command --------------------------------------------------------------------------------------
def test_createmerchant_gives_the_staff_login_the_role_asked(db, capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("createmerchant", "shop1", "--name", "Shop", "--staff", "mei", "--password", "pw-12345678-x")
    call_command(
        "createmerchant", "shop2", "--name", "Shop 2", "--staff", "lin", "--password", "pw-12345678-x", "--role", CS
    )
    assert Membership.objects.get(user__username="mei").role == OWNER
    assert Membership.objects.get(user__username="lin").role == CS
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert ApiToken.objects.get(merchant__slug=out[1]["merchant"]).role == OPERATOR
    assert not get_user_model().objects.get(username="lin").user_permissions.exists()  # the role is all


def test_role_labels_are_translated() -> None:
    from django.utils import translation

    with translation.override("zh-hans"):
        labels = {value: str(label) for value, label in Membership.Role.choices}
    assert labels == {OWNER: "店主", OPERATOR: "运营", CS: "客服", ANALYST: "数据分析师"}


def test_a_token_cache_entry_from_before_roles_is_not_trusted_for_a_role(world: World) -> None:
    from django.core.cache import cache

    from apps.merchants.tokens import local_tokens, token_cache_key

    analyst = world.members[ANALYST]
    local_tokens.clear()
    cache.set(token_cache_key(analyst.token.key_hash), f"{analyst.token.pk}:{world.a.merchant.pk}", 30)
    r = analyst.api.post("/api/v1/products", {"name": "x"}, format="json")
    assert r.status_code == 403 and r.json()["extra"]["role"] == ANALYST
    assert analyst.api.get("/api/v1/products").status_code == 200


# --- the order page: its action buttons, notes and flags ----------------------------------------------
# (what is posted, to which URL, roles that may)
ORDER_PAGE = {
    "note": (lambda o: reverse("admin:orders_order_note", args=[o.pk]), {"text": "买家要求周五发货"}, ALL - {ANALYST}),
    "flag": (lambda o: reverse("admin:orders_order_flag", args=[o.pk]), {"colour": "red"}, ALL - {ANALYST}),
    "cancel": (lambda o: reverse("admin:orders_order_act", args=[o.pk, "cancel"]), {}, ALL - {ANALYST}),
    "confirm": (lambda o: reverse("admin:orders_order_act", args=[o.pk, "confirm"]), {}, WRITERS),
}


@pytest.mark.parametrize("role", ROLE_IDS)
@pytest.mark.parametrize("what", sorted(ORDER_PAGE))
def test_order_page_posts_follow_the_role(world: World, role: str, what: str) -> None:
    path, data, may = ORDER_PAGE[what]
    order = Order.objects.get(public_id=world.a.orders[0 if what == "confirm" else 1]["id"])
    client = world.members[role].client
    page = client.get(url(Order, "change", order.pk))
    assert page.status_code == 200
    if what == "note":
        assert page.context["can_note"] is (role in may)
    elif what in ("cancel", "confirm"):
        assert (what in {a.key for a in page.context["actions"]}) is (role in may)
    before = snapshot(world.a.merchant)
    r = client.post(path(order), data)
    if role in may:
        assert r.status_code == 302
        assert snapshot(world.a.merchant) != before, (role, what)
    else:
        assert r.status_code == 403
        assert snapshot(world.a.merchant) == before, (role, what)


def test_order_page_of_a_merchant_where_the_login_is_analyst_offers_nothing(
    world: World, owner_of_a_analyst_of_b: Client
) -> None:
    client = owner_of_a_analyst_of_b
    theirs = Order.objects.get(public_id=world.b.orders[1]["id"])
    page = client.get(url(Order, "change", theirs.pk))
    assert page.status_code == 200 and page.context["can_note"] is False and not page.context["actions"]
    before = snapshot(world.b.merchant)
    assert client.post(reverse("admin:orders_order_act", args=[theirs.pk, "cancel"])).status_code == 403
    assert client.post(reverse("admin:orders_order_note", args=[theirs.pk]), {"text": "x"}).status_code == 403
    assert snapshot(world.b.merchant) == before
    ours = Order.objects.get(public_id=world.a.orders[1]["id"])
    assert client.get(url(Order, "change", ours.pk)).context["can_note"] is True
