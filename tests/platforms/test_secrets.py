"""Secrets at rest (apps/core/encryption.py): the column holds a Fernet token, never the text; keys
rotate with ``rotate_secrets``; the webhook signing secrets were moved to it by a migration and
still sign deliveries."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from apps.core import encryption
from apps.platforms.models import PlatformShop
from apps.platforms.services import shop_create
from apps.webhooks.models import WebhookEndpoint
from apps.webhooks.services import endpoint_create
from apps.webhooks.signing import signature_header, verify_signature

pytestmark = pytest.mark.django_db

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test constants
        return cursor.fetchone()[0]


def make_shop(merchant, **kw) -> PlatformShop:  # type: ignore[no-untyped-def]
    fields = {
        "platform": "douyin",
        "shop_id": "1234567",
        "app_key": "app-key",
        "app_secret": "the-app-secret",
        "access_token": "the-access-token",
    }
    return shop_create(merchant=merchant, **{**fields, **kw})


def test_a_secret_reads_back_as_written_and_the_column_holds_a_token_not_the_text(merchant) -> None:
    shop = make_shop(merchant)
    fresh = PlatformShop.objects.get(pk=shop.pk)
    assert (fresh.app_secret, fresh.access_token, fresh.msg_secret) == ("the-app-secret", "the-access-token", "")
    stored = raw("platforms_platformshop", "app_secret", shop.pk)
    assert "the-app-secret" not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
    assert encryption.decrypt(stored) == "the-app-secret"
    assert raw("platforms_platformshop", "msg_secret", shop.pk) == ""  # empty stays empty
    # the same text twice gives two tokens: equal secrets cannot be spotted in the table
    other = make_shop(merchant, shop_id="7654321")
    assert raw("platforms_platformshop", "app_secret", other.pk) != stored


def test_an_update_through_the_queryset_is_encrypted_too(merchant) -> None:
    shop = make_shop(merchant)
    PlatformShop.objects.filter(pk=shop.pk).update(access_token="refreshed")
    assert "refreshed" not in raw("platforms_platformshop", "access_token", shop.pk)
    assert PlatformShop.objects.get(pk=shop.pk).access_token == "refreshed"


def test_encrypted_fields_cannot_be_filtered_on(merchant) -> None:
    make_shop(merchant)
    with pytest.raises(FieldError):
        list(PlatformShop.objects.filter(app_secret="the-app-secret"))
    assert PlatformShop.objects.filter(app_secret__isnull=False).count() == 1


def test_a_value_no_key_opens_is_an_error_not_an_empty_secret(merchant) -> None:
    shop = make_shop(merchant)
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_C]), pytest.raises(encryption.SecretUndecryptable):
        PlatformShop.objects.get(pk=shop.pk)


@pytest.mark.parametrize("keys", [[], ["not-a-key"]], ids=["none", "malformed"])
def test_missing_or_malformed_keys_are_a_configuration_error(keys: list[str]) -> None:
    with override_settings(SECRETS_ENCRYPTION_KEYS=keys), pytest.raises(ImproperlyConfigured):
        encryption.encrypt("x")


def _rotate(**kw) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("rotate_secrets", stdout=out, stderr=io.StringIO(), **kw)
    return out.getvalue()


def test_rotation_re_encrypts_every_secret_with_the_first_key_in_batches_and_is_idempotent(merchant) -> None:
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_A]):
        shops = [make_shop(merchant, shop_id=str(n), app_secret=f"secret-{n}") for n in range(5)]
        endpoint = endpoint_create(merchant_id=merchant.pk, url="https://erp.example.com/h", events=["order.paid"])
        secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    before = raw("platforms_platformshop", "app_secret", shops[0].pk)
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        # both keys open everything before the rotation: the service keeps running meanwhile
        assert PlatformShop.objects.get(pk=shops[0].pk).app_secret == "secret-0"
        out = _rotate(batch_size=2)
        assert "platforms.PlatformShop.app_secret: 5 re-encrypted" in out
        assert "platforms.PlatformShop.access_token: 5 re-encrypted" in out
        assert "webhooks.WebhookEndpoint.secret: 1 re-encrypted" in out
        assert "11 re-encrypted, 0 already current" in out
        assert raw("platforms_platformshop", "app_secret", shops[0].pk) != before
        again = _rotate(batch_size=2)
        assert "0 re-encrypted, 11 already current" in again
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_B]):  # the old key dropped
        for n, shop in enumerate(shops):
            fresh = PlatformShop.objects.get(pk=shop.pk)
            assert (fresh.app_secret, fresh.access_token) == (f"secret-{n}", "the-access-token")
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
        Fernet(KEY_B).decrypt(raw("platforms_platformshop", "app_secret", shops[4].pk).encode())


def test_rotation_reports_values_no_key_opens_and_fails(merchant) -> None:
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_A]):
        make_shop(merchant)
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_B]), pytest.raises(CommandError, match="open with none"):
        _rotate()
    with override_settings(SECRETS_ENCRYPTION_KEYS=[KEY_A]):
        assert PlatformShop.objects.get().app_secret == "the-app-secret"  # left as it was


def test_a_webhook_secret_is_encrypted_and_still_signs_deliveries(merchant) -> None:
    endpoint = endpoint_create(merchant_id=merchant.pk, url="https://erp.example.com/h", events=["order.paid"])
    secret = endpoint.secret
    assert secret.startswith("whsec_")
    stored = raw("webhooks_webhookendpoint", "secret", endpoint.pk)
    assert secret not in stored
    body = b'{"id":"evt_1"}'
    header = signature_header(WebhookEndpoint.objects.get(pk=endpoint.pk).secret, body)
    verify_signature(body, header, secret)


@pytest.mark.django_db(transaction=True)
def test_the_webhook_migration_encrypts_existing_secrets_and_its_reverse_restores_them(merchant) -> None:
    call_command("migrate", "webhooks", "0001", verbosity=0)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO webhooks_webhookendpoint (merchant_id, url, description, events, secret, is_active, "
                "created_at, updated_at) VALUES (%s, %s, '', %s, %s, %s, %s, %s)",
                [
                    merchant.pk,
                    "https://erp.example.com/old",
                    '["order.paid"]',
                    "whsec_plain",
                    True,
                    "2026-01-01",
                    "2026-01-01",
                ],
            )
            cursor.execute("SELECT id FROM webhooks_webhookendpoint WHERE secret = 'whsec_plain'")
            pk = cursor.fetchone()[0]
        call_command("migrate", "webhooks", "0002", verbosity=0)
        stored = raw("webhooks_webhookendpoint", "secret", pk)
        assert stored != "whsec_plain" and encryption.decrypt(stored) == "whsec_plain"
        endpoint = WebhookEndpoint.objects.get(pk=pk)
        assert endpoint.secret == "whsec_plain"
        body = b'{"id":"evt_2"}'
        verify_signature(body, signature_header(endpoint.secret, body), "whsec_plain")
        call_command("migrate", "webhooks", "0002", verbosity=0)  # nothing to do, nothing re-encrypted
        assert raw("webhooks_webhookendpoint", "secret", pk) == stored

        call_command("migrate", "webhooks", "0001", verbosity=0)
        assert raw("webhooks_webhookendpoint", "secret", pk) == "whsec_plain"
    finally:
        call_command("migrate", "webhooks", verbosity=0)
