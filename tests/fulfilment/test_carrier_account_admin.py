"""Carrier accounts in the back office: secrets as password inputs that never show the stored
value and keep it when left blank, the carrier's rules as form errors, the push URL to copy,
one default per merchant, owners only; in Chinese for a zh-hans merchant."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.fulfilment.models import CarrierAccount
from apps.fulfilment.services import carrier_account_create
from apps.merchants.services import staff_create

pytestmark = pytest.mark.django_db

ADD = "/admin/fulfilment/carrieraccount/add/"
SENDER = {
    "name": "杭州仓",
    "mobile": "13800000001",
    "province": "浙江省",
    "city": "杭州市",
    "district": "余杭区",
    "detail": "文一西路1号",
}


def client_for(merchant, role: str = "owner", lang: str = "zh-hans") -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE=lang)
    client.force_login(
        staff_create(merchant=merchant, username=f"{role}-{lang}", password="pw-long-enough-1", role=role)
    )
    return client


def form(**kw: str) -> dict[str, str]:
    data = {
        "carrier": "kuaidi100",
        "name": "中通-杭州仓",
        "app_id": "C4E3F2A1B0D9",
        "app_key": "ADMIN-APP-KEY",
        "app_secret": "ADMIN-APP-SECRET",
        "push_salt": "",
        "partner_id": "ZTO-HZ-0001",
        "partner_key": "ADMIN-PARTNER-KEY",
        "month_code": "",
        "express": "ZTO",
        **{f"sender_{part}": value for part, value in SENDER.items()},
        "api_base_url": "",
        "enabled": "on",
    }
    data.update(kw)
    return data


def account(merchant, **kw) -> CarrierAccount:  # type: ignore[no-untyped-def]
    values = {"carrier": "kdniao", "app_id": "1700001", "app_key": "OLD-KEY", "express": "SF", "sender": SENDER}
    return carrier_account_create(merchant=merchant, **(values | kw))


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_add_an_account_then_its_page_shows_the_push_url_and_never_the_secrets(merchant, lang, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    client = client_for(merchant, lang=lang)
    page = client.get(ADD)
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("app_key", "app_secret", "push_salt", "partner_key", "month_code"):
        assert f'type="password" name="{name}"' in html, name
    if lang == "zh-hans":
        assert "快递账号" in html and "寄件人" in html and "快递100" in html and "快递鸟" in html
    r = client.post(ADD, form())
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    stored = CarrierAccount.objects.get()
    assert (stored.merchant, stored.app_key, stored.app_secret, stored.partner_key) == (
        merchant,
        "ADMIN-APP-KEY",
        "ADMIN-APP-SECRET",
        "ADMIN-PARTNER-KEY",
    )
    assert len(stored.push_salt) >= 32  # generated: Kuaidi100 pushes are verified with it
    change = client.get(f"/admin/fulfilment/carrieraccount/{stored.pk}/change/")
    assert change.status_code == 200
    html = change.content.decode()
    for secret in ("ADMIN-APP-KEY", "ADMIN-APP-SECRET", "ADMIN-PARTNER-KEY", stored.push_salt):
        assert secret not in html
    assert f'readonly value="https://shop.example.com/hooks/carriers/kuaidi100/{stored.push_token}"' in html
    if lang == "zh-hans":
        assert "推送地址" in html and "已保存（不显示）" in html


def test_blank_secrets_keep_the_stored_ones_and_a_new_value_replaces_it(merchant) -> None:  # type: ignore[no-untyped-def]
    client = client_for(merchant)
    stored = account(merchant, month_code="OLD-MONTH")
    url = f"/admin/fulfilment/carrieraccount/{stored.pk}/change/"
    kdniao = {"carrier": "kdniao", "app_id": "1700001", "express": "SF", "app_secret": "", "partner_key": ""}
    r = client.post(url, form(**kdniao, app_key="", month_code="", name="改名"))
    assert r.status_code == 302, r.context["adminform"].form.errors
    stored.refresh_from_db()
    assert (stored.name, stored.app_key, stored.month_code) == ("改名", "OLD-KEY", "OLD-MONTH")
    r = client.post(url, form(**kdniao, app_key="NEW-KEY", month_code=""))
    assert r.status_code == 302
    stored.refresh_from_db()
    assert (stored.app_key, stored.month_code, stored.carrier) == ("NEW-KEY", "OLD-MONTH", "kdniao")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"app_key": ""}, "app_key"),
        ({"app_secret": ""}, "app_secret"),
        ({"month_code": "123"}, "month_code"),
        ({"sender_mobile": "not a phone"}, "sender_mobile"),
        ({"sender_city": ""}, "sender_city"),
        ({"express": "DHL"}, "express"),
        ({"enabled": "", "is_default": "on"}, "is_default"),
    ],
)
def test_the_carriers_rules_are_form_errors_and_nothing_is_saved(merchant, change, field) -> None:  # type: ignore[no-untyped-def]
    r = client_for(merchant).post(ADD, form(**change))
    assert r.status_code == 200
    assert field in r.context["adminform"].form.errors, r.context["adminform"].form.errors
    assert not CarrierAccount.objects.exists()


def test_a_new_default_replaces_the_old_one(merchant) -> None:  # type: ignore[no-untyped-def]
    old = account(merchant, is_default=True)
    r = client_for(merchant).post(ADD, form(is_default="on"))
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    new = CarrierAccount.objects.exclude(pk=old.pk).get()
    old.refresh_from_db()
    assert (old.is_default, new.is_default) == (False, True)


def test_another_merchants_account_is_out_of_reach(merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    theirs = account(other_merchant, name="theirs")
    client = client_for(merchant)
    assert client.get(f"/admin/fulfilment/carrieraccount/{theirs.pk}/change/").status_code == 302  # not found
    r = client.post(f"/admin/fulfilment/carrieraccount/{theirs.pk}/change/", form(name="mine now"))
    assert r.status_code == 302
    theirs.refresh_from_db()
    assert theirs.name == "theirs"
    page = client.get("/admin/fulfilment/carrieraccount/")
    assert page.status_code == 200 and list(page.context["cl"].queryset) == []


@pytest.mark.parametrize("role", ["operator", "customer_service", "analyst"])
def test_only_owners_open_carrier_accounts(merchant, role) -> None:  # type: ignore[no-untyped-def]
    stored = account(merchant)
    client = client_for(merchant, role=role)
    assert client.get(ADD).status_code == 403
    assert client.get("/admin/fulfilment/carrieraccount/").status_code == 403
    assert client.get(f"/admin/fulfilment/carrieraccount/{stored.pk}/change/").status_code == 403
    client.post(f"/admin/fulfilment/carrieraccount/{stored.pk}/delete/", {"post": "yes"})
    assert CarrierAccount.objects.filter(pk=stored.pk).exists()
