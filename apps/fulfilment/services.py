"""Writes of fulfilment's configuration: a merchant's carrier accounts.

Secrets (``app_key``, ``app_secret``, ``push_salt``, ``partner_key``, ``month_code``) are
encrypted by their fields when saved; nothing here logs or returns them. Every rule is checked
before the first write (the API and the admin form run :func:`carrier_account_validate`)."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

from apps.catalog.errors import InvalidInput
from apps.core.errors import ApplicationError
from apps.core.phone import compact_phone, normalize_phone
from apps.merchants.models import Merchant

from .carriers.base import EXPRESS
from .locks import lock_merchant_accounts
from .models import CarrierAccount, CarrierChoice, new_push_salt

SENDER_FIELDS = ("name", "mobile", "province", "city", "district", "detail")
ACCOUNT_FIELDS = (
    "carrier",
    "name",
    "app_id",
    "app_key",
    "app_secret",
    "push_salt",
    "partner_id",
    "partner_key",
    "month_code",
    "express",
    "api_base_url",
    "enabled",
    "is_default",
)
SECRET_FIELDS = ("app_key", "app_secret", "push_salt", "partner_key", "month_code")

# What each carrier needs, and what it has no use for (a value there is refused, not dropped).
REQUIRED: dict[str, tuple[str, ...]] = {
    CarrierChoice.KUAIDI100: ("app_id", "app_key", "app_secret"),
    CarrierChoice.KDNIAO: ("app_id", "app_key"),
}
UNUSED: dict[str, tuple[str, ...]] = {
    CarrierChoice.KUAIDI100: ("month_code",),  # Kuaidi100's label API has no month code
    CarrierChoice.KDNIAO: ("app_secret", "push_salt"),  # Kdniao signs everything with the AppKey
}
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_url = URLValidator(schemes=["http", "https"])


def check_api_base_url(value: str) -> str:
    """An http(s) URL without its trailing slash, or "" (the production gateway)."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        _url(value)
    except ValidationError:
        raise ApplicationError(
            _("api_base_url must be an http:// or https:// URL"), code="invalid_url", extra={"field": "api_base_url"}
        ) from None
    return value.rstrip("/")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"field": field})


def _check_sender(account: CarrierAccount) -> None:
    """Every part of the sender is required (``extra.field`` is ``sender.<part>``)."""
    for part in SENDER_FIELDS:
        value = str(getattr(account, f"sender_{part}") or "").strip()
        if not value:
            raise _invalid(f"sender.{part}", _("%(field)s is required") % {"field": f"sender.{part}"})
        setattr(account, f"sender_{part}", value)
    mobile = compact_phone(account.sender_mobile)
    if not _PHONE.match(mobile):
        raise _invalid("sender.mobile", _("sender.mobile is not a phone number"))
    account.sender_mobile = normalize_phone(mobile)


def carrier_account_validate(account: CarrierAccount) -> None:
    """The rules of an account about to be saved (new or changed). Normalises what it checks
    (stripped ids, the base URL without its trailing slash, the sender's phone in its stored
    form) and gives a Kuaidi100 account without a push salt a new one. Raises InvalidInput
    (``invalid``, ``extra.field`` names the field) and ApplicationError ``invalid_url``."""
    if account.carrier not in CarrierChoice.values:
        raise _invalid(
            "carrier", _("carrier must be one of: %(allowed)s") % {"allowed": ", ".join(CarrierChoice.values)}
        )
    for field in ("app_id", "partner_id", "name", *SECRET_FIELDS):
        setattr(account, field, str(getattr(account, field) or "").strip())
    for field in REQUIRED[account.carrier]:
        if not getattr(account, field):
            raise _invalid(
                field,
                _("%(field)s is required for %(carrier)s") % {"field": field, "carrier": account.get_carrier_display()},
            )
    for field in UNUSED[account.carrier]:
        if getattr(account, field):
            raise _invalid(
                field,
                _("%(carrier)s does not use %(field)s: leave it empty")
                % {"field": field, "carrier": account.get_carrier_display()},
            )
    if account.carrier == CarrierChoice.KUAIDI100 and not account.push_salt:
        account.push_salt = new_push_salt()  # the push view verifies with it: never leave it unset
    if account.express not in EXPRESS:
        raise _invalid("express", _("express must be one of: %(allowed)s") % {"allowed": ", ".join(EXPRESS)})
    _check_sender(account)
    account.api_base_url = check_api_base_url(account.api_base_url)
    if account.is_default and not account.enabled:
        raise _invalid("is_default", _("a disabled account cannot be the default"))


def _save(account: CarrierAccount) -> CarrierAccount:
    """Save a validated account; when it is the default, the merchant's other default stops
    being one. The merchant's accounts are locked first, so two accounts made default at the
    same time end with one default, not an integrity error."""
    lock_merchant_accounts(account.merchant_id)
    if account.is_default:
        others = CarrierAccount.objects.filter(merchant_id=account.merchant_id, is_default=True)
        if account.pk is not None:
            others = others.exclude(pk=account.pk)
        others.update(is_default=False)
    account.save()
    return account


@transaction.atomic
def carrier_account_save(*, account: CarrierAccount) -> CarrierAccount:
    """Validate and save an account built or changed elsewhere (the admin's form)."""
    carrier_account_validate(account)
    return _save(account)


def _sender_fields(sender: dict[str, Any] | None) -> dict[str, Any]:
    return {f"sender_{part}": value for part, value in (sender or {}).items() if part in SENDER_FIELDS}


@transaction.atomic
def carrier_account_create(
    *,
    merchant: Merchant,
    carrier: str,
    app_id: str,
    app_key: str,
    express: str,
    sender: dict[str, Any],
    name: str = "",
    app_secret: str = "",
    push_salt: str = "",
    partner_id: str = "",
    partner_key: str = "",
    month_code: str = "",
    api_base_url: str = "",
    enabled: bool = True,
    is_default: bool = False,
) -> CarrierAccount:
    """Add a carrier account. ``sender`` is ``{name, mobile, province, city, district, detail}``.
    ``is_default`` makes it the merchant's default (the previous default stops being one). A
    Kuaidi100 account without ``push_salt`` gets a new one. Raises what
    :func:`carrier_account_validate` raises."""
    account = CarrierAccount(
        merchant=merchant,
        carrier=carrier,
        name=name,
        app_id=app_id,
        app_key=app_key,
        app_secret=app_secret,
        push_salt=push_salt,
        partner_id=partner_id,
        partner_key=partner_key,
        month_code=month_code,
        express=express,
        api_base_url=api_base_url,
        enabled=enabled,
        is_default=is_default,
        **_sender_fields(sender),
    )
    carrier_account_validate(account)
    return _save(account)


@transaction.atomic
def carrier_account_update(*, account: CarrierAccount, data: dict[str, Any]) -> CarrierAccount:
    """Change an account's fields (``ACCOUNT_FIELDS``, and ``sender`` in part or whole); a secret
    not in ``data`` is kept. The carrier does not change (add a new account instead). Disabling
    the default account leaves the merchant without one. Raises what
    :func:`carrier_account_validate` raises."""
    locked = CarrierAccount.objects.select_for_update().get(pk=account.pk)
    if "carrier" in data and data["carrier"] != locked.carrier:
        raise _invalid("carrier", _("the carrier of an account cannot change; add a new account"))
    for field in ACCOUNT_FIELDS:
        if field in data:
            setattr(locked, field, data[field])
    if data.get("enabled") is False and "is_default" not in data:
        locked.is_default = False
    for field, value in _sender_fields(data.get("sender")).items():
        setattr(locked, field, value)
    carrier_account_validate(locked)
    return _save(locked)


@transaction.atomic
def carrier_account_delete(*, account: CarrierAccount) -> None:
    """Remove an account. (Once parcels refer to accounts, an account in use is disabled, not
    deleted: the PROTECT of those references will refuse it.)"""
    CarrierAccount.objects.filter(pk=account.pk).delete()
