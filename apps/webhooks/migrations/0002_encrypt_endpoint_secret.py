# The signing secret becomes encrypted at rest (apps/core/encryption.py): the column turns into text
# (a Fernet token is longer than the secret), then the secrets already stored are encrypted.
# Reversible: the reverse decrypts them back to plain text before the column shrinks again.

from django.db import migrations

import apps.webhooks.models
from apps.core.encryption import EncryptedTextField, decrypt_column, encrypt_column


def encrypt_secrets(state_apps, schema_editor):
    encrypt_column(state_apps.get_model("webhooks", "WebhookEndpoint"), "secret")


def decrypt_secrets(state_apps, schema_editor):
    decrypt_column(state_apps.get_model("webhooks", "WebhookEndpoint"), "secret")


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=EncryptedTextField(
                default=apps.webhooks.models.new_secret, editable=False, verbose_name="signing secret"
            ),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
