"""Roles where a real commit matters: the data migration of old "staff" members, and the order
fast path (its own ASGI route, outside DRF) refusing a token whose role may not place orders."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.merchants.services import api_token_create
from apps.orders.models import Order
from apps.orders.placement.fastpath import OrderFastPath

from ..factories import make_listing, order_body
from ..orders.test_fastpath import _passthrough, call

pytestmark = pytest.mark.django_db(transaction=True)


def test_migration_turns_old_staff_members_into_operators_and_keeps_owners() -> None:
    before, after = [("merchants", "0001_initial")], [("merchants", "0002_roles")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    merchant = old.get_model("merchants", "Merchant").objects.create(slug="m", name="M")
    user_model = get_user_model()
    staff, owner = (user_model.objects.create(username=n) for n in ("s", "o"))
    Membership = old.get_model("merchants", "Membership")
    Membership.objects.create(user_id=staff.pk, merchant_id=merchant.pk, role="staff")
    Membership.objects.create(user_id=owner.pk, merchant_id=merchant.pk, role="owner")
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("merchants", "Membership")
    assert dict(new.objects.values_list("user__username", "role")) == {"s": "operator", "o": "owner"}
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


async def test_fast_path_refuses_order_placement_to_a_read_only_token_and_places_nothing(merchant) -> None:
    listing = await sync_to_async(make_listing)(merchant, quota=3, limit=2)
    app = OrderFastPath(_passthrough, threads=1)
    body = json.dumps(order_body(listing.pk)).encode()
    for role, expected in (("analyst", 403), ("customer_service", 403), ("operator", 201)):
        _, raw = await sync_to_async(api_token_create)(merchant=merchant, name=role, role=role)
        headers = {"Authorization": f"Token {raw}", "Content-Type": "application/json", "Idempotency-Key": role}
        status, out = await call(app, "POST", "/api/v1/orders", body, headers)
        assert status == expected, (role, out)
        if expected == 403:
            err = json.loads(out)
            assert err["code"] == "insufficient_role" and err["extra"]["roles_allowed"] == ["owner", "operator"]
            assert await sync_to_async(Order.objects.count)() == 0
    assert await sync_to_async(Order.objects.count)() == 1
