"""The forecast page's form: a planned show (its SKUs from the shop's catalogue, streamer, start,
length). Checks the input only; the forecast is ``forecast.forecast``."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import SKU
from apps.core.datetimes import in_range

if TYPE_CHECKING:
    from .suggestions import PlanDefaults


class ForecastForm(forms.Form):
    MAX_SKUS = 50
    STREAMER_MAX = 100
    MIN_HOURS, MAX_HOURS = Decimal("0.25"), Decimal("12")

    sku = forms.MultipleChoiceField(
        label=_("SKUs"),
        error_messages={
            "required": _("Pick at least one SKU."),
            "invalid_choice": _("%(value)s is not a SKU of this shop."),
        },
    )
    streamer = forms.CharField(label=_("Streamer"), max_length=STREAMER_MAX)
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Start time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    hours = forms.DecimalField(
        label=_("Hours on air"), min_value=MIN_HOURS, max_value=MAX_HOURS, decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.25"}),
    )  # fmt: skip

    def __init__(self, *args: object, skus: list[SKU], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.catalogue = {s.code: s for s in skus}
        field = self.fields["sku"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(s.code, s.code) for s in skus]

    def clean_sku(self) -> list[str]:
        codes = list(dict.fromkeys(self.cleaned_data["sku"]))
        if len(codes) > self.MAX_SKUS:
            raise forms.ValidationError(_("At most %(n)d SKUs in one show."), params={"n": self.MAX_SKUS})
        return codes

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "date" in cleaned and not in_range(datetime.combine(cleaned["date"], time.min)):  # as the API's days
            self.add_error("date", _("Pick a day in the years 2000 to 2099."))
        return cleaned

    @classmethod
    def plan_data(cls, defaults: PlanDefaults, *, skus: list[SKU]) -> dict[str, Any]:
        """The form's fields from the page's defaults (the last show's SKUs, streamer and length, the
        next recommended start), brought within the form's limits: only SKUs still in the
        catalogue and at most ``MAX_SKUS`` of them, the length between ``MIN_HOURS`` and ``MAX_HOURS``."""
        when = defaults.starts_at.astimezone(ZoneInfo(settings.TIME_ZONE))
        known = {s.code for s in skus}
        hours = min(max(Decimal(str(defaults.hours)), cls.MIN_HOURS), cls.MAX_HOURS)
        return {
            "sku": [c for c in dict.fromkeys(defaults.skus) if c in known][: cls.MAX_SKUS],
            "streamer": defaults.streamer[: cls.STREAMER_MAX],
            "date": when.date().isoformat(),
            "time": when.strftime("%H:%M"),
            "hours": str(hours.quantize(Decimal("0.01"))),
        }

    def starts_at(self) -> datetime:
        d: date = self.cleaned_data["date"]
        t: time = self.cleaned_data["time"]
        return datetime.combine(d, t, tzinfo=ZoneInfo(settings.TIME_ZONE))
