"""Admin forms for models that hold secrets (platform shops, carrier accounts): password inputs
that never show the stored value, a hint that says whether one is stored, a blank input that
keeps it, and a service's ApplicationError shown on the field it names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .errors import ApplicationError


def add_application_error(form: forms.BaseForm, exc: ApplicationError, *, field: str | None = None) -> None:
    """``exc`` as a form error on ``field`` (default: the field its ``extra`` names), or on the
    form when the form has no such field."""
    name = field if field is not None else str(exc.extra.get("field") or "")
    form.add_error(name if name in form.fields else None, ValidationError(exc.message, code=exc.code))


class WriteOnlySecretsForm(forms.ModelForm):
    """A ModelForm whose ``secret_fields`` are write-only: declare each as a ``CharField`` with a
    ``PasswordInput`` (``secret_field``); ``secret_hints`` are their help texts, to which the form
    adds whether a value is stored. Left blank on an existing object, the stored value is kept."""

    secret_fields: ClassVar[Sequence[str]] = ()
    secret_hints: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            stored = bool(self.instance.pk and getattr(self.instance, name))
            keep = _("A value is stored (not shown): leave blank to keep it.") if stored else _("Not set.")
            self.fields[name].help_text = format_html("{} {}", self.secret_hints.get(name, ""), keep)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        for name in self.secret_fields:
            if name not in cleaned:
                continue
            value = (cleaned.get(name) or "").strip()
            if not value and self.instance.pk:
                value = str(getattr(self.instance, name) or "")  # blank keeps the stored value
            cleaned[name] = value
        return cleaned


def secret_field(label: Any) -> forms.CharField:
    """A write-only secret's form field: optional, a password input that never renders a value."""
    return forms.CharField(label=label, required=False, widget=forms.PasswordInput())
