"""Encryption at rest for stored secrets (platform app secrets and tokens, webhook signing secrets).

Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, ``cryptography``) made with the keys of
``settings.SECRETS_ENCRYPTION_KEYS`` (env ``LC_SECRETS_KEYS``, comma-separated): the first key
encrypts, every key decrypts (``MultiFernet``). Rotation: put a new key first, keep the old ones
after it, run ``manage.py rotate_secrets`` (re-encrypts every stored value with the first key),
then drop the old keys (docs/operations.md).

- :class:`EncryptedTextField` is a ``TextField`` whose column holds the token, never the text.
  The model attribute is the plain text. Empty stays empty (nothing to hide; "is it set?" stays
  cheap). Tokens are random: the field cannot be filtered on (only ``isnull``).
- A stored value no configured key opens raises :class:`SecretUndecryptable` when it is read:
  a wrong or missing key is a configuration error to fix, never a silent empty secret.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models.functions import Cast

DEFAULT_BATCH_SIZE = 500


class SecretUndecryptable(Exception):
    """A stored secret that none of ``SECRETS_ENCRYPTION_KEYS`` opens (a key removed too early,
    or the database of another installation)."""


@functools.lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS is empty: set LC_SECRETS_KEYS to one or more Fernet keys, e.g. from "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        )
    parsed = []
    for position, key in enumerate(keys, 1):
        try:
            parsed.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"SECRETS_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 bytes, url-safe base64)"
            ) from None
    return MultiFernet(parsed), parsed[0]


def _keys() -> tuple[MultiFernet, Fernet]:
    return _fernets(tuple(settings.SECRETS_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """A token of ``plaintext`` made with the first key."""
    return _keys()[0].encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The text of a token made with any configured key; raises :class:`SecretUndecryptable`."""
    try:
        return _keys()[0].decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise SecretUndecryptable(
            "a stored secret cannot be decrypted with SECRETS_ENCRYPTION_KEYS (was a key removed before "
            "rotate_secrets ran?)"
        ) from None


def is_current(token: str) -> bool:
    """Was ``token`` made with the first key (nothing to rotate)?"""
    try:
        _keys()[1].decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True


def is_token(value: str) -> bool:
    """Does any configured key open ``value`` (as opposed to plain text not yet encrypted)?"""
    try:
        decrypt(value)
    except SecretUndecryptable:
        return False
    return True


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token (see the module's docstring). ``editable``, ``default`` and
    the rest behave as on a ``TextField``; lookups other than ``isnull`` are refused."""

    description = "Text encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if hasattr(value, "as_sql"):
            return value  # an expression (``_write`` stores tokens as they are)
        value = self.get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None  # "Unsupported lookup": a random token never equals anything
        return super().get_lookup(lookup_name)


# --- whole columns: migrations and rotation -----------------------------------------------------
def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def _raw(name: str) -> str:
    return f"_raw_{name}"


def _batches(model: type[models.Model], names: list[str], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows as stored (the columns' raw text, not decrypted), each batch read under row locks in
    its own transaction (a secret saved meanwhile waits, and is never overwritten with an old value)."""
    last: Any = None
    raw = {_raw(n): Cast(n, output_field=models.TextField()) for n in names}
    while True:
        with transaction.atomic():
            qs = model._base_manager.order_by("pk").select_for_update(of=("self",))
            if last is not None:
                qs = qs.filter(pk__gt=last)
            rows = list(qs.annotate(**raw).values("pk", *raw)[:batch_size])
            if not rows:
                return
            yield rows
            last = rows[-1]["pk"]


def _write(model: type[models.Model], pk: Any, values: dict[str, str]) -> None:
    """Store ``values`` in the columns exactly as given (the field's own encryption bypassed)."""
    model._base_manager.filter(pk=pk).update(
        **{n: models.Value(v, output_field=models.TextField()) for n, v in values.items()}
    )


def encrypt_column(model: type[models.Model], name: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Encrypt the plain text left in a column that has just become an EncryptedTextField (a
    migration's forward step). Values already encrypted are left alone. Returns the rows changed."""
    changed = 0
    for rows in _batches(model, [name], batch_size):
        for row in rows:
            value = row[_raw(name)]
            if value and not is_token(value):
                _write(model, row["pk"], {name: encrypt(value)})
                changed += 1
    return changed


def decrypt_column(model: type[models.Model], name: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Put the plain text back in a column (a migration's reverse step). Returns the rows changed."""
    changed = 0
    for rows in _batches(model, [name], batch_size):
        for row in rows:
            value = row[_raw(name)]
            if value and is_token(value):
                _write(model, row["pk"], {name: decrypt(value)})
                changed += 1
    return changed


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)  # "app.Model.field" -> values re-encrypted
    current: int = 0  # values already made with the first key
    undecryptable: list[str] = field(default_factory=list)  # "app.Model.field pk=…" that no key opens

    @property
    def total_rotated(self) -> int:
        return sum(self.rotated.values())


def rotate_all(
    *, batch_size: int = DEFAULT_BATCH_SIZE, models_: list[type[models.Model]] | None = None
) -> RotationReport:
    """Re-encrypt every stored secret of every model with the first key. Idempotent: a value the
    first key already opens is not touched, so a second run (or a run after an interrupted one)
    changes nothing more. A value no key opens is reported and left as it is."""
    multi, _primary = _keys()
    report = RotationReport()
    for model in models_ if models_ is not None else apps.get_models():
        names = encrypted_fields(model)
        if not names:
            continue
        for rows in _batches(model, names, batch_size):
            for row in rows:
                updates: dict[str, str] = {}
                for name in names:
                    value = row[_raw(name)]
                    if not value:
                        continue
                    if is_current(value):
                        report.current += 1
                        continue
                    try:
                        updates[name] = multi.rotate(value.encode("ascii")).decode("ascii")
                    except (InvalidToken, UnicodeEncodeError):
                        report.undecryptable.append(f"{model._meta.label}.{name} pk={row['pk']}")
                        continue
                    label = f"{model._meta.label}.{name}"
                    report.rotated[label] = report.rotated.get(label, 0) + 1
                if updates:
                    _write(model, row["pk"], updates)
    return report
