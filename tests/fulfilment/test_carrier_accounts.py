"""Carrier accounts (issue 13): add, read, change and remove them through the API with write-only
secrets encrypted at rest; the rules per carrier and their error codes; one default per
merchant; tenant walls and roles; and an account's client drawing a real waybill from the
carrier simulators."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from apps.core import encryption
from apps.fulfilment import selectors, services
from apps.fulfilment.carriers.base import Credentials, Party, WaybillRequest
from apps.fulfilment.clients.kdniao import KdniaoClient
from apps.fulfilment.clients.kuaidi100 import Kuaidi100Client
from apps.fulfilment.models import CarrierAccount, CarrierChoice
from apps.fulfilment.simulator import DEMO_ACCOUNTS, KdniaoSimulator, Kuaidi100Simulator

from ..factories import make_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/carrier-accounts"
SENDER = {
    "name": "杭州仓",
    "mobile": "138-0000-0001",
    "province": "浙江省",
    "city": "杭州市",
    "district": "余杭区",
    "detail": "文一西路1号",
}
SECRETS = {
    "app_key": "K100-KEY-secret-1",
    "app_secret": "K100-SECRET-secret-2",
    "push_salt": "K100-SALT-secret-3",
    "partner_key": "ZTO-PASSWORD-secret-4",
}
SECRET_NAMES = ("app_key", "app_secret", "push_salt", "partner_key", "month_code")


def body(**kw: Any) -> dict[str, Any]:
    return {
        "carrier": "kuaidi100",
        "name": "中通-杭州仓",
        "app_id": "C4E3F2A1B0D9",
        **SECRETS,
        "partner_id": "ZTO-HZ-0001",
        "express": "ZTO",
        "sender": SENDER,
        **kw,
    }


def kdniao_body(**kw: Any) -> dict[str, Any]:
    return {
        "carrier": "kdniao",
        "name": "快递鸟",
        "app_id": "1700001",
        "app_key": "KDN-APPKEY-secret-5",
        "month_code": "MONTH-CODE-secret-6",
        "express": "SF",
        "sender": SENDER,
        **kw,
    }


def no_secrets_in(response: Any, *values: str) -> None:
    raw = response.content.decode()
    for value in (*SECRETS.values(), "KDN-APPKEY-secret-5", "MONTH-CODE-secret-6", *values):
        assert value not in raw, raw
    for name in SECRET_NAMES:
        assert f'"{name}"' not in raw, raw


def raw_column(column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM fulfilment_carrieraccount WHERE id = %s", [pk])  # noqa: S608 - test constants
        return cursor.fetchone()[0]


# --- add and read ------------------------------------------------------------------------------------
def test_add_an_account_and_read_it_without_its_secrets(api: APIClient, merchant, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    r = api.post(URL, body(), format="json")
    assert r.status_code == 201, r.content
    no_secrets_in(r)
    account = r.json()
    assert account["has_app_key"] and account["has_app_secret"] and account["has_push_salt"]
    assert account["has_partner_key"] and not account["has_month_code"]
    assert account["sender"] == {**SENDER, "mobile": "13800000001"}  # the phone in its stored form
    assert (account["carrier"], account["express"], account["partner_id"]) == ("kuaidi100", "ZTO", "ZTO-HZ-0001")
    assert (account["enabled"], account["is_default"], account["api_base_url"]) == (True, False, "")
    stored = CarrierAccount.objects.get(pk=account["id"])
    assert account["push_url"] == f"https://shop.example.com/hooks/carriers/kuaidi100/{stored.push_token}"
    assert len(stored.push_token) >= 32
    assert stored.merchant == merchant
    assert (stored.app_key, stored.app_secret, stored.push_salt, stored.partner_key) == tuple(SECRETS.values())
    for response in (
        api.get(URL),
        api.get(f"{URL}/{account['id']}"),
        api.patch(f"{URL}/{account['id']}", {"name": "新名字"}, format="json"),
    ):
        assert response.status_code == 200, response.content
        no_secrets_in(response)
    assert api.get(f"{URL}/{account['id']}").json()["name"] == "新名字"
    assert CarrierAccount.objects.get(pk=account["id"]).app_secret == SECRETS["app_secret"]  # kept


def test_push_url_is_absolute_from_the_request_without_public_base_url(api, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = ""
    r = api.post(URL, kdniao_body(api_base_url="http://127.0.0.1:9300/"), format="json")
    assert r.status_code == 201, r.content
    assert r.json()["push_url"].startswith("http://testserver/hooks/carriers/kdniao/")
    assert r.json()["api_base_url"] == "http://127.0.0.1:9300"  # no trailing slash


def test_secrets_are_encrypted_at_rest(api) -> None:  # type: ignore[no-untyped-def]
    pk = api.post(URL, body(), format="json").json()["id"]
    for name, value in SECRETS.items():
        stored = raw_column(name, pk)
        assert value not in stored, name
        assert encryption.decrypt(stored) == value
    assert raw_column("month_code", pk) == ""  # empty stays empty
    pk2 = api.post(URL, kdniao_body(), format="json").json()["id"]
    assert "MONTH-CODE-secret-6" not in raw_column("month_code", pk2)
    assert encryption.decrypt(raw_column("month_code", pk2)) == "MONTH-CODE-secret-6"
    assert raw_column("app_id", pk) == "C4E3F2A1B0D9"  # ids are not secrets


def test_rotate_secrets_re_encrypts_the_accounts_secrets(merchant) -> None:  # type: ignore[no-untyped-def]
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(SECRETS_ENCRYPTION_KEYS=[key_a]):
        pk = services.carrier_account_create(merchant=merchant, **kdniao_body()).pk
    with override_settings(SECRETS_ENCRYPTION_KEYS=[key_b, key_a]):
        out = io.StringIO()
        call_command("rotate_secrets", stdout=out, stderr=io.StringIO())
        assert "fulfilment.CarrierAccount.app_key: 1 re-encrypted" in out.getvalue()
        assert "fulfilment.CarrierAccount.month_code: 1 re-encrypted" in out.getvalue()
    with override_settings(SECRETS_ENCRYPTION_KEYS=[key_b]):  # the old key dropped
        account = CarrierAccount.objects.get(pk=pk)
        assert (account.app_key, account.month_code) == ("KDN-APPKEY-secret-5", "MONTH-CODE-secret-6")


def test_a_kuaidi100_account_without_a_push_salt_gets_one(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post(URL, body(push_salt=""), format="json")
    assert r.status_code == 201, r.content
    assert r.json()["has_push_salt"]
    first = CarrierAccount.objects.get(pk=r.json()["id"]).push_salt
    assert len(first) >= 32
    other = api.post(URL, {k: v for k, v in body().items() if k != "push_salt"}, format="json").json()["id"]
    assert CarrierAccount.objects.get(pk=other).push_salt not in ("", first)
    api.patch(f"{URL}/{r.json()['id']}", {"name": "x"}, format="json")
    assert CarrierAccount.objects.get(pk=r.json()["id"]).push_salt == first  # kept on a change


def test_patch_changes_a_secret_or_a_sender_part_only_when_sent(api) -> None:  # type: ignore[no-untyped-def]
    pk = api.post(URL, body(), format="json").json()["id"]
    r = api.patch(f"{URL}/{pk}", {"app_key": "NEW-KEY-7", "sender": {"detail": "文一西路2号"}}, format="json")
    assert r.status_code == 200, r.content
    no_secrets_in(r, "NEW-KEY-7")
    assert r.json()["sender"] == {**SENDER, "mobile": "13800000001", "detail": "文一西路2号"}
    account = CarrierAccount.objects.get(pk=pk)
    assert (account.app_key, account.app_secret, account.partner_key) == (
        "NEW-KEY-7",
        SECRETS["app_secret"],
        SECRETS["partner_key"],
    )


# --- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "change", "code", "field"),
    [
        (body, {"carrier": "sf"}, "invalid", "carrier"),
        (body, {"express": "DHL"}, "invalid", "express"),
        (body, {"app_key": ""}, "invalid", "app_key"),
        (body, {"app_id": "  "}, "invalid", "app_id"),
        (body, {"app_secret": ""}, "invalid", "app_secret"),  # Kuaidi100's e-waybill needs it
        (body, {"month_code": "123"}, "invalid", "month_code"),  # Kuaidi100 has none
        (kdniao_body, {"app_secret": "s"}, "invalid", "app_secret"),  # Kdniao signs with the AppKey
        (kdniao_body, {"push_salt": "s"}, "invalid", "push_salt"),
        (body, {"sender": {**SENDER, "mobile": "not a phone"}}, "invalid", "sender.mobile"),
        (body, {"sender": {**SENDER, "city": " "}}, "invalid", "city"),
        (body, {"sender": {k: v for k, v in SENDER.items() if k != "detail"}}, "invalid", "detail"),
        (body, {"sender": None}, "invalid", "sender"),
        (body, {"api_base_url": "ftp://example.com"}, "invalid_url", "api_base_url"),
        (body, {"api_base_url": "not a url"}, "invalid_url", "api_base_url"),
        (body, {"enabled": False, "is_default": True}, "invalid", "is_default"),
    ],
)
def test_bad_accounts_are_refused_with_a_code_and_change_nothing(api, make, change, code, field) -> None:  # type: ignore[no-untyped-def]
    r = api.post(URL, make(**change), format="json")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == code
    assert field in json.dumps(r.json()["extra"]), r.json()
    assert not CarrierAccount.objects.exists()


def test_bad_changes_are_refused_and_change_nothing(api) -> None:  # type: ignore[no-untyped-def]
    pk = api.post(URL, body(), format="json").json()["id"]
    before = CarrierAccount.objects.filter(pk=pk).values().get()
    for change, field in (
        ({"carrier": "kdniao"}, "carrier"),
        ({"app_key": ""}, "app_key"),
        ({"express": "DHL"}, "express"),
        ({"sender": {"mobile": "x"}}, "sender.mobile"),
        ({"sender": {"name": ""}}, "name"),
        ({"api_base_url": "javascript:alert(1)"}, "api_base_url"),
        ({"enabled": False, "is_default": True}, "is_default"),
    ):
        r = api.patch(f"{URL}/{pk}", {"name": "changed", **change}, format="json")
        assert r.status_code == 400, (change, r.content)
        assert field in json.dumps(r.json()["extra"]), (change, r.json())
    assert CarrierAccount.objects.filter(pk=pk).values().get() == before


# --- the default account ------------------------------------------------------------------------------
def test_one_default_per_merchant_the_new_default_replaces_the_old(api, other_api) -> None:  # type: ignore[no-untyped-def]
    first = api.post(URL, body(is_default=True), format="json").json()
    theirs = other_api.post(URL, body(is_default=True), format="json").json()
    second = api.post(URL, kdniao_body(is_default=True), format="json").json()
    assert second["is_default"]
    assert not api.get(f"{URL}/{first['id']}").json()["is_default"]
    assert other_api.get(f"{URL}/{theirs['id']}").json()["is_default"]  # another merchant's is its own
    r = api.patch(f"{URL}/{first['id']}", {"is_default": True}, format="json")
    assert r.json()["is_default"]
    assert [a["id"] for a in api.get(URL).json()["results"] if a["is_default"]] == [first["id"]]
    merchant_id = CarrierAccount.objects.get(pk=first["id"]).merchant_id
    assert selectors.account_default(merchant_id=merchant_id).pk == first["id"]
    # disabling the default leaves none
    r = api.patch(f"{URL}/{first['id']}", {"enabled": False}, format="json")
    assert (r.json()["enabled"], r.json()["is_default"]) == (False, False)
    assert selectors.account_default(merchant_id=merchant_id) is None


def test_the_database_refuses_a_second_default(merchant) -> None:  # type: ignore[no-untyped-def]
    account = services.carrier_account_create(
        merchant=merchant, carrier="kdniao", app_id="1", app_key="k", express="SF", sender=SENDER, is_default=True
    )
    other = services.carrier_account_create(
        merchant=merchant, carrier="kdniao", app_id="2", app_key="k", express="SF", sender=SENDER
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        CarrierAccount.objects.filter(pk=other.pk).update(is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        CarrierAccount.objects.filter(pk=account.pk).update(enabled=False)  # a disabled default


# --- remove ---------------------------------------------------------------------------------------------
def test_delete_removes_the_account(api) -> None:  # type: ignore[no-untyped-def]
    pk = api.post(URL, body(), format="json").json()["id"]
    assert api.delete(f"{URL}/{pk}").status_code == 204
    assert not CarrierAccount.objects.exists()
    assert api.get(f"{URL}/{pk}").status_code == 404


# --- walls and roles -----------------------------------------------------------------------------------
def test_another_merchants_account_is_a_404_and_stays_as_it_was(api, other_api) -> None:  # type: ignore[no-untyped-def]
    theirs = other_api.post(URL, body(), format="json").json()["id"]
    before = CarrierAccount.objects.filter(pk=theirs).values().get()
    for method, extra in (("get", {}), ("patch", {"name": "x"}), ("delete", {})):
        r = getattr(api, method)(f"{URL}/{theirs}", extra, format="json")
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert api.get(URL).json()["results"] == []
    assert CarrierAccount.objects.filter(pk=theirs).values().get() == before


@pytest.mark.parametrize("role", ["operator", "customer_service", "analyst"])
def test_carrier_accounts_are_the_owners_only(merchant, api, role) -> None:  # type: ignore[no-untyped-def]
    pk = api.post(URL, body(), format="json").json()["id"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant, name=role, role=role)}")
    for r in (
        client.get(URL),
        client.get(f"{URL}/{pk}"),
        client.post(URL, kdniao_body(), format="json"),
        client.patch(f"{URL}/{pk}", {"name": "x"}, format="json"),
        client.delete(f"{URL}/{pk}"),
    ):
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_role")
    assert CarrierAccount.objects.count() == 1
    assert CarrierAccount.objects.get().name == "中通-杭州仓"


def test_no_token_is_a_401(db) -> None:  # type: ignore[no-untyped-def]
    assert APIClient().get(URL).status_code == 401


# --- credentials and client ---------------------------------------------------------------------------
def test_credentials_carry_every_field_in_clear(merchant) -> None:  # type: ignore[no-untyped-def]
    account = services.carrier_account_create(merchant=merchant, **body())
    assert account.credentials() == Credentials(
        carrier="kuaidi100",
        app_id="C4E3F2A1B0D9",
        app_key=SECRETS["app_key"],
        app_secret=SECRETS["app_secret"],
        push_salt=SECRETS["push_salt"],
        partner_id="ZTO-HZ-0001",
        partner_key=SECRETS["partner_key"],
    )
    assert "secret" not in repr(account.credentials())
    assert account.sender == Party(**{**SENDER, "mobile": "13800000001"})
    assert CarrierChoice.values == ["kuaidi100", "kdniao"]


RECEIVER = Party(name="李四", mobile="13900005678", province="广东省", city="深圳市", district="福田区",
                 detail="深南大道2号")  # fmt: skip


def _waybill(order_code: str, express: str) -> WaybillRequest:
    return WaybillRequest(
        order_code=order_code,
        express=express,
        sender=Party(**{**SENDER, "mobile": "13800000001"}),
        receiver=RECEIVER,
        items=(("T恤 白色 L", 2),),
        weight_kg=Decimal("0.8"),
    )


def test_a_kdniao_accounts_client_draws_a_waybill_from_the_simulator(merchant) -> None:  # type: ignore[no-untyped-def]
    demo = DEMO_ACCOUNTS["kdniao"]
    with KdniaoSimulator(ebusiness_id=demo["ebusiness_id"], app_key=demo["app_key"]) as sim:
        account = services.carrier_account_create(
            merchant=merchant,
            carrier="kdniao",
            app_id=demo["ebusiness_id"],
            app_key=demo["app_key"],
            month_code="7551234567",
            express="SF",
            sender=SENDER,
            api_base_url=sim.base_url,
        )
        account = CarrierAccount.objects.get(pk=account.pk)  # as read back: decrypted secrets
        with account.client(timeout=5.0) as client:
            assert isinstance(client, KdniaoClient) and client.base_url == sim.base_url.rstrip("/")
            waybill = client.create_waybill(_waybill("LC-ACC-1", account.express))
    assert (waybill.carrier, waybill.express, waybill.order_code) == ("kdniao", "SF", "LC-ACC-1")
    assert waybill.waybill_no


def test_a_kuaidi100_accounts_client_draws_a_waybill_from_the_simulator(merchant) -> None:  # type: ignore[no-untyped-def]
    demo = DEMO_ACCOUNTS["kuaidi100"]
    with Kuaidi100Simulator(**demo) as sim:
        account = services.carrier_account_create(
            merchant=merchant,
            carrier="kuaidi100",
            app_id=demo["customer"],
            app_key=demo["key"],
            app_secret=demo["secret"],
            push_salt=demo["salt"],
            express="YTO",
            sender=SENDER,
            api_base_url=sim.base_url,
        )
        account = CarrierAccount.objects.get(pk=account.pk)
        with account.client(timeout=5.0) as client:
            assert isinstance(client, Kuaidi100Client)
            waybill = client.create_waybill(_waybill("LC-ACC-2", account.express))
    assert (waybill.carrier, waybill.express, waybill.order_code) == ("kuaidi100", "YTO", "LC-ACC-2")
    assert waybill.waybill_no


def test_without_a_base_url_the_client_calls_the_production_hosts(merchant) -> None:  # type: ignore[no-untyped-def]
    account = services.carrier_account_create(merchant=merchant, **kdniao_body())
    with account.client() as client:
        assert client.base_url is None
