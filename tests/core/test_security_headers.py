"""Content-Security-Policy on every page (django-csp), and admin login throttling (django-axes)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.merchants import services as merchants
from apps.orders.placement.links import status_path

from ..factories import make_listing, make_token
from ..realtime.conftest import place

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (x.strip() for x in header.split(";")) if d}


def inline_scripts(body: str) -> list[str]:
    """<script> elements that run code without a src (json_script data blocks do not run)."""
    return re.findall(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", body)


def assert_strict_scripts(csp: dict[str, list[str]]) -> None:
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert {"'self'", "ws:", "wss:"} <= set(csp["connect-src"])


def test_csp_on_the_storefront_with_a_nonce_for_its_stock_bar_styles(merchant) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=4)
    r = Client().get(f"/live/{merchant.slug}/")
    assert r.status_code == 200
    csp = policy(r)
    assert_strict_scripts(csp)
    nonces = [s for s in csp["style-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1 and "'unsafe-inline'" not in csp["style-src"]
    body = r.content.decode()
    nonce = nonces[0][len("'nonce-") : -1]
    assert f'<style nonce="{nonce}">' in body
    assert f'.listing-card[data-listing="{listing.pk}"] .stock-bar > span {{ width: 0%; }}' in body
    assert 'style="' not in body and not inline_scripts(body)


def test_csp_on_the_buyer_status_page(merchant) -> None:  # type: ignore[no-untyped-def]
    order = place(make_listing(merchant, quota=4))
    r = Client().get(status_path(order))
    assert r.status_code == 200
    csp = policy(r)
    assert_strict_scripts(csp)
    assert csp["style-src"] == ["'self'"]  # no nonce asked for, no inline style allowed
    body = r.content.decode()
    assert 'style="' not in body and not inline_scripts(body)


def test_csp_on_the_dashboard(merchant) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789"))
    for path in ("/dashboard/", f"/dashboard/sessions/{make_listing(merchant).session_id}/"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert_strict_scripts(policy(r))
        assert 'style="' not in r.content.decode()


def test_csp_on_the_admin_allows_inline_styles_but_not_inline_scripts(merchant) -> None:  # type: ignore[no-untyped-def]
    r = Client().get("/admin/login/")
    assert r.status_code == 200
    csp = policy(r)
    assert_strict_scripts(csp)
    assert csp["style-src"] == ["'self'", "'unsafe-inline'"]


def test_csp_on_the_admin_index_with_the_merchant_overview(merchant) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(merchants.staff_create(merchant=merchant, username="mei", password="pw-123456789"))
    r = client.get("/admin/")
    assert r.status_code == 200
    assert_strict_scripts(policy(r))
    body = r.content.decode()
    assert "lc-to-handle" in body and "css/admin-theme.css" in body


def test_csp_on_error_pages_and_the_api_docs() -> None:
    assert_strict_scripts(policy(Client().get("/no-such-page/")))
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200
    assert_strict_scripts(policy(docs))
    assert not inline_scripts(docs.content.decode())  # its start-up script is a file too


# --- login throttling ---------------------------------------------------------------------------
def admin_login(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_sixth_login_after_five_wrong_passwords_is_refused_even_with_the_right_one(merchant) -> None:  # type: ignore[no-untyped-def]
    merchants.staff_create(merchant=merchant, username="mei", password="right-password-1")
    client = Client()
    for _ in range(4):
        r = admin_login(client, "mei", "wrong-password")
        assert r.status_code == 200  # the form again, with its error
    assert admin_login(client, "mei", "wrong-password").status_code == 429  # the fifth failure locks
    r = admin_login(client, "mei", "right-password-1")
    assert r.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still not logged in


def test_a_locked_out_username_does_not_lock_out_another_user(merchant) -> None:  # type: ignore[no-untyped-def]
    merchants.staff_create(merchant=merchant, username="mei", password="right-password-1")
    merchants.staff_create(merchant=merchant, username="lin", password="other-password-2")
    for _ in range(6):
        admin_login(Client(), "mei", "wrong-password")
    other = Client()
    r = admin_login(other, "lin", "other-password-2")
    assert r.status_code == 302 and r["Location"] == "/admin/"
    assert other.get("/admin/").status_code == 200


def test_same_username_from_another_ip_is_not_locked_out(merchant) -> None:  # type: ignore[no-untyped-def]
    merchants.staff_create(merchant=merchant, username="mei", password="right-password-1")
    for _ in range(6):
        admin_login(Client(REMOTE_ADDR="203.0.113.9"), "mei", "wrong-password")
    assert admin_login(Client(REMOTE_ADDR="203.0.113.9"), "mei", "right-password-1").status_code == 429
    # X-Forwarded-For is not believed: the ASGI server sets REMOTE_ADDR from the trusted proxy
    spoofed = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert admin_login(spoofed, "mei", "right-password-1").status_code == 429
    assert admin_login(Client(REMOTE_ADDR="198.51.100.7"), "mei", "right-password-1").status_code == 302


def test_an_operator_can_lift_a_lockout(merchant) -> None:  # type: ignore[no-untyped-def]
    merchants.staff_create(merchant=merchant, username="mei", password="right-password-1")
    for _ in range(5):
        admin_login(Client(), "mei", "wrong-password")
    assert admin_login(Client(), "mei", "right-password-1").status_code == 429
    call_command("axes_reset_ip_username", "127.0.0.1", "mei", stdout=io.StringIO())
    assert admin_login(Client(), "mei", "right-password-1").status_code == 302


def test_a_good_login_resets_the_failure_count(merchant) -> None:  # type: ignore[no-untyped-def]
    merchants.staff_create(merchant=merchant, username="mei", password="right-password-1")
    for _ in range(4):
        admin_login(Client(), "mei", "wrong-password")
    assert admin_login(Client(), "mei", "right-password-1").status_code == 302
    for _ in range(4):
        admin_login(Client(), "mei", "wrong-password")
    assert admin_login(Client(), "mei", "right-password-1").status_code == 302


def test_api_tokens_are_not_throttled_by_failed_admin_logins(merchant) -> None:  # type: ignore[no-untyped-def]
    token = make_token(merchant)
    for _ in range(8):
        admin_login(Client(), "tools", "wrong-password")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for _ in range(8):
        assert api.get("/api/v1/products").status_code == 200
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    for _ in range(8):
        assert bad.get("/api/v1/products").status_code == 401  # refused, never locked
    assert api.get("/api/v1/products").status_code == 200
