"""Tenants are walls in the admin: a staff member of merchant A never sees, opens, finds, picks,
changes or deletes anything of merchant B, through any ModelAdmin.

The tests iterate over ``admin.site._registry``: a newly registered ModelAdmin is covered without
touching this file, and must be either scoped to a merchant or declared non-tenant below.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import models
from django.forms import ModelChoiceField
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from apps.catalog.models import SKU, Listing, Product
from apps.merchants.admin_scoping import MerchantScopedAdmin, MerchantScopedInline
from apps.merchants.models import ApiToken, Membership, Merchant
from apps.merchants.services import staff_create

from ..factories import MerchantFactory
from ..tenancy import Tenant, build_tenant, label, listed_pks, merchant_lookup, of, pks, snapshot

pytestmark = pytest.mark.django_db

# Registered models that belong to no merchant. A merchant's staff must not reach them at all.
NON_TENANT = {
    "auth.User",
    "auth.Group",
    "django_q.Schedule",
    "django_q.Success",
    "django_q.Failure",
    "django_q.OrmQ",
}

REGISTRY = admin.site._registry
TENANT_MODELS = sorted((m for m in REGISTRY if merchant_lookup(m)), key=label)
NON_TENANT_MODELS = sorted((m for m in REGISTRY if label(m) in NON_TENANT), key=label)


def url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@dataclass
class World:
    a: Tenant
    b: Tenant
    root: Client


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    a = build_tenant(MerchantFactory(slug="acme", name="Acme"))
    b = build_tenant(MerchantFactory(slug="rival", name="Rival"))
    root_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    root = Client()
    root.force_login(root_user)
    return World(a, b, root)


def b_objects(model: type[models.Model], world: World) -> list[models.Model]:
    objs = list(of(model, world.b.merchant))
    assert objs, f"the test world has no {label(model)} of merchant B: extend tenancy.build_tenant()"
    return objs


def changelist_pks(response: Any) -> set:
    return {obj.pk for obj in response.context["cl"].queryset}


def staff_request(user: Any) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


# --- every registered ModelAdmin is accounted for -----------------------------------------------
def test_every_registered_model_admin_is_merchant_scoped_or_declared_non_tenant() -> None:
    for model, model_admin in REGISTRY.items():
        if label(model) in NON_TENANT:
            assert merchant_lookup(model) is None, f"{label(model)} has a merchant: scope it"
            continue
        assert merchant_lookup(model), f"{label(model)} has no merchant path and is not declared non-tenant"
        assert isinstance(model_admin, MerchantScopedAdmin), f"{label(model)} admin is not a MerchantScopedAdmin"
        for inline in model_admin.inlines:
            if merchant_lookup(inline.model):
                assert issubclass(inline, MerchantScopedInline), f"inline {inline.__name__} of {label(model)}"
        # the path resolves: a wrong merchant_path would raise FieldError here
        model._default_manager.filter(**{f"{merchant_lookup(model)}__in": [0]}).exists()


@pytest.mark.parametrize("model", NON_TENANT_MODELS, ids=label)
def test_non_tenant_admin_is_closed_to_merchant_staff(world: World, model: type[models.Model]) -> None:
    assert world.a.client.get(url(model, "changelist")).status_code == 403
    assert world.a.client.get(url(model, "add")).status_code == 403
    assert world.root.get(url(model, "changelist")).status_code == 200


def test_admin_index_renders_for_staff_and_lists_only_merchant_apps(world: World) -> None:
    r = world.a.client.get("/admin/")
    assert r.status_code == 200
    app_labels = {app["app_label"] for app in r.context["app_list"]}
    assert {"catalog", "inventory"} <= app_labels
    assert not app_labels & {"auth", "django_q"}
    assert b"Rival" not in r.content and b"rival" not in r.content


def test_admin_index_renders_for_superuser(world: World) -> None:
    r = world.root.get("/admin/")
    assert r.status_code == 200
    assert {"auth", "catalog"} <= {app["app_label"] for app in r.context["app_list"]}


# --- changelist, change view by URL, search, filters --------------------------------------------
@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_staff_changelist_shows_exactly_own_merchants_objects(world: World, model: type[models.Model]) -> None:
    b_objects(model, world)
    r = world.a.client.get(url(model, "changelist"))
    if r.status_code == 403:  # superuser-only admin (memberships)
        return
    assert r.status_code == 200
    assert changelist_pks(r) == listed_pks(model, world.a.merchant)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_superuser_changelist_shows_every_merchants_objects(world: World, model: type[models.Model]) -> None:
    r = world.root.get(url(model, "changelist"))
    assert r.status_code == 200
    assert changelist_pks(r) >= listed_pks(model, world.a.merchant) | listed_pks(model, world.b.merchant)
    listed = listed_pks(model, world.b.merchant)
    for obj in b_objects(model, world):
        if obj.pk in listed:  # (a channel pool has no page: its listing's shows it)
            assert world.root.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_staff_cannot_open_change_delete_or_history_of_other_merchants_object(
    world: World, model: type[models.Model]
) -> None:
    before = snapshot(world.b.merchant)
    for obj in b_objects(model, world):
        for view in ("change", "delete", "history"):
            r = world.a.client.get(url(model, view, obj.pk))
            assert r.status_code in (302, 403, 404), (label(model), view, r.status_code)
        r = world.a.client.post(url(model, "delete", obj.pk), {"post": "yes"})
        assert r.status_code in (302, 403, 404)
        r = world.a.client.post(url(model, "change", obj.pk), {"name": "taken over", "title": "taken over"})
        assert r.status_code in (302, 403, 404)
    assert snapshot(world.b.merchant) == before


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_staff_search_does_not_find_other_merchants_objects(world: World, model: type[models.Model]) -> None:
    model_admin = REGISTRY[model]
    if world.a.client.get(url(model, "changelist")).status_code == 403:
        return
    b_pks = pks(model, world.b.merchant)
    searched = 0
    for field in model_admin.search_fields:
        path = field.lstrip("^=@")
        for term in set(of(model, world.b.merchant).values_list(path, flat=True)):
            if not term:
                continue
            r = world.a.client.get(url(model, "changelist"), {"q": term})
            assert r.status_code == 200
            assert not changelist_pks(r) & b_pks, (label(model), field, term)
            # the term does find B's object for someone allowed to see it
            assert changelist_pks(world.root.get(url(model, "changelist"), {"q": term})) & b_pks
            searched += 1
    assert searched or not model_admin.search_fields


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_staff_list_filters_offer_and_apply_only_own_related_objects(world: World, model: type[models.Model]) -> None:
    r = world.a.client.get(url(model, "changelist"))
    if r.status_code == 403:
        return
    for spec in r.context["cl"].filter_specs:
        field = getattr(spec, "field", None)
        related = getattr(field, "related_model", None)
        if related is None or not merchant_lookup(related):
            continue
        offered = {str(pk) for pk, _ in spec.lookup_choices}
        assert not offered & {str(pk) for pk in pks(related, world.b.merchant)}, (label(model), field.name)
        for other in pks(related, world.b.merchant):
            r2 = world.a.client.get(url(model, "changelist"), {f"{field.name}__id__exact": other})
            assert r2.status_code in (200, 302)
            if r2.status_code == 200:
                assert not changelist_pks(r2) & pks(model, world.b.merchant)


def test_memberships_of_other_merchants_are_out_of_reach_and_own_is_read_only(world: World) -> None:
    """Owners manage their merchant's staff (tests/merchants/test_roles.py), never their own row."""
    own = Membership.objects.get(user=world.a.staff)
    assert world.a.client.get(url(Membership, "change", own.pk)).context["has_change_permission"] is False
    r = world.a.client.post(url(Membership, "change", own.pk), {"role": "analyst"})
    assert r.status_code == 403
    own.refresh_from_db()
    assert own.role == "owner"
    assert world.root.get(url(Membership, "add")).status_code == 200


def test_staff_can_rename_own_merchant_but_not_change_its_slug_or_activation(world: World) -> None:
    a = world.a
    path = url(Merchant, "change", a.merchant.pk)
    form = a.client.get(path).context["adminform"].form
    assert set(form.fields) == {"name"}
    r = a.client.post(path, {"name": "Acme Live", "slug": "rival", "is_active": ""})
    assert r.status_code == 302
    a.merchant.refresh_from_db()
    assert (a.merchant.name, a.merchant.slug, a.merchant.is_active) == ("Acme Live", "acme", True)


def test_listing_change_form_does_not_offer_to_move_the_listing_to_another_sku_or_show(world: World) -> None:
    """listing_update never moves a listing (its quota is carved from that SKU's stock)."""
    r = world.a.client.get(url(Listing, "change", world.a.scheduled.pk))
    assert r.status_code == 200
    form = r.context["adminform"].form
    assert "sku" not in form.fields and "session" not in form.fields
    assert "price" in form.fields


# --- autocomplete --------------------------------------------------------------------------------
def _autocomplete_sources() -> list[tuple[type[models.Model], str, type[models.Model]]]:
    """Every (model, foreign key) whose target has a searchable ModelAdmin: the endpoint serves
    them all, listed in autocomplete_fields or not."""
    found = []
    for model in apps.get_models():
        for f in model._meta.get_fields():
            if f.is_relation and f.many_to_one or getattr(f, "many_to_many", False) and f.concrete:
                target = f.related_model
                if target in REGISTRY and merchant_lookup(target) and REGISTRY[target].search_fields:
                    found.append((model, f.name, target))
    return sorted(found, key=lambda x: (label(x[0]), x[1]))


AUTOCOMPLETE = _autocomplete_sources()


@pytest.mark.parametrize(
    ("source", "field_name", "target"), AUTOCOMPLETE, ids=[f"{label(s)}.{f}" for s, f, _ in AUTOCOMPLETE]
)
def test_autocomplete_never_returns_other_merchants_objects(
    world: World, source: type[models.Model], field_name: str, target: type[models.Model]
) -> None:
    params = {"app_label": source._meta.app_label, "model_name": source._meta.model_name, "field_name": field_name}
    b_ids = {str(pk) for pk in pks(target, world.b.merchant)}
    assert b_ids
    for term in ("", "rival", "Rival"):
        r = world.a.client.get("/admin/autocomplete/", {**params, "term": term})
        if r.status_code == 403:
            continue
        assert r.status_code == 200, r.content
        ids = {row["id"] for row in r.json()["results"]}
        assert not ids & b_ids, (label(source), field_name, term)
    seen_by_root = {
        row["id"] for row in world.root.get("/admin/autocomplete/", {**params, "term": ""}).json()["results"]
    }
    assert {str(pk) for pk in listed_pks(target, world.b.merchant)} <= seen_by_root


def test_autocomplete_for_own_objects_works_for_staff(world: World) -> None:
    r = world.a.client.get(
        "/admin/autocomplete/", {"app_label": "catalog", "model_name": "listing", "field_name": "sku", "term": "CODE"}
    )
    assert r.status_code == 200
    assert {row["id"] for row in r.json()["results"]} == {str(world.a.sku.pk)}


# --- bulk actions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_bulk_actions_posted_with_other_merchants_ids_change_nothing(world: World, model: type[models.Model]) -> None:
    model_admin = REGISTRY[model]
    names = {"delete_selected", *model_admin.get_actions(staff_request(world.a.staff))}
    names |= {a if isinstance(a, str) else a.__name__ for a in (model_admin.actions or [])}
    b_ids = [str(pk) for pk in pks(model, world.b.merchant)]
    assert b_ids
    before = snapshot(world.b.merchant)
    for name in sorted(names):
        world.a.client.post(
            url(model, "changelist"), {"action": name, "_selected_action": b_ids, "index": "0", "post": "yes"}
        )
        assert snapshot(world.b.merchant) == before, (label(model), name)


def test_custom_actions_work_on_own_objects(world: World) -> None:
    a = world.a
    r = a.client.post(
        url(Listing, "changelist"),
        {"action": "open_listings", "_selected_action": [a.scheduled.pk, world.b.scheduled.pk], "index": "0"},
    )
    assert r.status_code == 302
    a.scheduled.refresh_from_db()
    world.b.scheduled.refresh_from_db()
    assert a.scheduled.status == Listing.Status.OPEN
    assert world.b.scheduled.status == Listing.Status.SCHEDULED


# --- add and change forms: foreign-key choices, posted foreign keys, merchant assignment --------
def _fk_fields(form: Any) -> dict[str, ModelChoiceField]:
    return {name: f for name, f in form.fields.items() if isinstance(f, ModelChoiceField)}


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_add_and_change_forms_offer_no_other_merchants_objects(world: World, model: type[models.Model]) -> None:
    pages = [world.a.client.get(url(model, "add"))]
    own = of(model, world.a.merchant).first()
    pages.append(world.a.client.get(url(model, "change", own.pk)))
    for r in pages:
        if r.status_code == 403:
            continue
        assert r.status_code == 200
        if "adminform" not in r.context:
            continue  # a page with no form (the order page) offers no objects to pick
        forms = [r.context["adminform"].form]
        for inline in r.context.get("inline_admin_formsets", []):
            forms.extend(inline.formset.forms)
            forms.append(inline.formset.empty_form)
        for form in forms:
            for name, field in _fk_fields(form).items():
                if form is not forms[0] and name == form._meta.model._meta.pk.name:
                    continue  # an inline row's own id: Django looks rows up in the (scoped) inline queryset
                related = field.queryset.model
                if merchant_lookup(related):
                    offered = set(field.queryset.values_list("pk", flat=True))
                    assert not offered & pks(related, world.b.merchant), (label(model), name)


def _management(r: Any) -> dict[str, str]:
    data = {}
    for inline in r.context.get("inline_admin_formsets", []):
        prefix = inline.formset.prefix
        data |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return data


# A valid add form for each admin a merchant's staff can add through. Keys are model labels.
ADD_FORMS = {
    "catalog.Product": lambda t: {"name": "New product", "description": "", "is_active": "on"},
    "catalog.SKU": lambda t: {"product": t.product.pk, "code": "NEW-1", "name": "", "price": "19.90", "on_hand": "5"},
    "catalog.LiveSession": lambda t: {
        "title": "New show",
        "streamer": "Host",
        "platforms": ["storefront", "douyin"],
        "scheduled_at_0": "2030-01-01",
        "scheduled_at_1": "20:00:00",
    },
    "catalog.Listing": lambda t: {
        "session": t.session.pk,
        "sku": t.sku.pk,
        "price": "9.90",
        "quota": "3",
        "per_buyer_limit": "1",
        "payment_window_minutes": "15",
    },
    "inventory.StockMovement": lambda t: {
        "sku": t.sku.pk,
        "kind": "receive",
        "on_hand_delta": "7",
        "reason": "delivery",
        "reference": "PO-1",
    },
    "merchants.ApiToken": lambda t: {"name": "new tool", "role": "operator"},
    "merchants.Membership": lambda t: {"username": "new-staff", "password": "a-long-pass-phrase-9", "role": "analyst"},
    "webhooks.WebhookEndpoint": lambda t: {
        "url": "https://erp.example.com/new",
        "description": "ERP",
        "events": ["order.paid", "stock.low"],
        "is_active": "on",
    },
    "fulfilment.CarrierAccount": lambda t: {
        "carrier": "kdniao",
        "name": "New",
        "app_id": "1700001",
        "app_key": "k",
        "express": "SF",
        "sender_name": "W",
        "sender_mobile": "13800000001",
        "sender_province": "P",
        "sender_city": "C",
        "sender_district": "D",
        "sender_detail": "1",
        "enabled": "on",
    },
    # one account per merchant: the tenant's own goes first (the form refuses a second one)
    "notifications.SmsAccount": lambda t: (
        t.sms_account.delete(),
        {
            "provider": "aliyun",
            "access_key_id": "LTAI-new",
            "access_key_secret": "s",
            "sign_name": "新签名",
            "api_base_url": "",
            "enabled": "on",
        },  # fmt: skip
    )[1],
    "notifications.SmsTemplate": lambda t: {"event": "shipped", "template_code": "SMS_NEW", "enabled": "on"},
    "notifications.SmsOptOut": lambda t: {"phone": "+86 137 0000 1234", "note": "asked by phone"},
    "platforms.PlatformShop": lambda t: {
        "platform": "taobao",
        "shop_id": f"new-{t.merchant.slug}",
        "app_key": "k",
        "app_secret": "s",
        "enabled": "on",
    },
}


@pytest.mark.parametrize("model", TENANT_MODELS, ids=label)
def test_add_form_rejects_other_merchants_foreign_keys_and_assigns_own_merchant(
    world: World, model: type[models.Model]
) -> None:
    a, b = world.a, world.b
    page = a.client.get(url(model, "add"))
    if page.status_code == 403:
        return
    assert label(model) in ADD_FORMS, f"add a valid add form for {label(model)} to ADD_FORMS"
    data = {**ADD_FORMS[label(model)](a), **_management(page)}
    form = page.context["adminform"].form
    before_b, count = snapshot(b.merchant), model._default_manager.count()
    for name, field in _fk_fields(form).items():
        related = field.queryset.model
        if name not in data or not merchant_lookup(related):
            continue
        theirs = of(related, b.merchant).first()
        r = a.client.post(url(model, "add"), {**data, name: theirs.pk})
        assert r.status_code == 200, (label(model), name, r.status_code)
        assert name in r.context["adminform"].form.errors, (label(model), name)
        assert model._default_manager.count() == count
    assert snapshot(b.merchant) == before_b

    r = a.client.post(url(model, "add"), data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r.content
    assert model._default_manager.count() == count + 1
    new = model._default_manager.order_by("-pk").first()
    assert of(model, a.merchant).filter(pk=new.pk).exists()


def test_change_form_rejects_other_merchants_foreign_key(world: World) -> None:
    a, b = world.a, world.b
    sku = a.sku
    r = a.client.post(
        url(SKU, "change", sku.pk), {"product": b.product.pk, "code": sku.code, "name": "x", "price": "50.00"}
    )
    assert r.status_code == 200
    assert "product" in r.context["adminform"].form.errors
    sku.refresh_from_db()
    assert sku.product_id == a.product.pk and sku.name == "Sku-acme"


def test_inline_cannot_edit_other_merchants_rows_through_own_parent(world: World) -> None:
    a, b = world.a, world.b
    data = {
        "name": "Renamed",
        "description": "",
        "is_active": "on",
        "skus-TOTAL_FORMS": "1",
        "skus-INITIAL_FORMS": "1",
        "skus-MIN_NUM_FORMS": "0",
        "skus-MAX_NUM_FORMS": "1000",
        "skus-0-id": b.sku.pk,
        "skus-0-product": a.product.pk,
        "skus-0-code": "STOLEN",
        "skus-0-name": "stolen",
        "skus-0-price": "1.00",
    }
    before = snapshot(b.merchant)
    a.client.post(url(Product, "change", a.product.pk), data)
    assert snapshot(b.merchant) == before
    b.sku.refresh_from_db()
    assert b.sku.code == "CODE-rival"


# --- API tokens in the admin ----------------------------------------------------------------------
def test_api_token_add_shows_the_token_once_and_stores_only_its_hash(world: World) -> None:
    a = world.a
    r = a.client.post(url(ApiToken, "add"), {"name": "obs plugin", "role": "operator"}, follow=True)
    assert r.status_code == 200
    shown = [str(m) for m in get_messages(r.wsgi_request)] or [m.message for m in r.context["messages"]]
    raws = [t for m in shown for t in re.findall(r"lc_[A-Za-z0-9_-]{30,}", m)]  # the whole token, any language
    assert len(raws) == 1, shown
    raw = raws[0]
    token = ApiToken.objects.get(name="obs plugin")
    assert token.merchant == a.merchant
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(list(ApiToken.objects.filter(pk=token.pk).values())[0], default=str)
    assert raw.encode() not in a.client.get(url(ApiToken, "changelist")).content
    assert raw.encode() not in a.client.get(url(ApiToken, "change", token.pk)).content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert api.get("/api/v1/products").status_code == 200


def test_revoke_action_revokes_own_token_and_the_api_answers_401(
    world: World, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    a = world.a
    assert a.api.get("/api/v1/products").status_code == 200  # cached as valid
    with django_capture_on_commit_callbacks(execute=True):
        r = a.client.post(
            url(ApiToken, "changelist"),
            {"action": "revoke_tokens", "_selected_action": [a.token.pk], "index": "0"},
        )
    assert r.status_code == 302
    a.token.refresh_from_db()
    assert a.token.revoked_at is not None
    r = a.api.get("/api/v1/products")
    assert r.status_code == 401
    assert r.json()["code"] == "authentication_failed"
    assert world.b.api.get("/api/v1/products").status_code == 200


def test_staff_with_two_merchants_sees_both_and_picks_the_merchant_of_new_objects(world: World) -> None:
    third = MerchantFactory(slug="third", name="Third")
    user = staff_create(merchant=world.a.merchant, username="multi", password="pw-long-enough-1")
    Membership.objects.create(user=user, merchant=third)
    client = Client()
    client.force_login(user)
    page = client.get(url(Product, "add"))
    offered = set(page.context["adminform"].form.fields["merchant"].queryset)
    assert offered == {world.a.merchant, third}
    r = client.post(url(Product, "add"), {"name": "x", "merchant": world.b.merchant.pk, **_management(page)})
    assert r.status_code == 200 and "merchant" in r.context["adminform"].form.errors
    r = client.post(url(Product, "add"), {"name": "for third", "merchant": third.pk, **_management(page)})
    assert r.status_code == 302
    assert Product.objects.get(name="for third").merchant == third
