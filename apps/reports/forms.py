"""The forecast page's form: a planned show (its SKUs from the shop's catalogue, streamer, start,
length). Checks the input only; the forecast is ``forecast.forecast``."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.catalog.models import SKU


class ForecastForm(forms.Form):
    sku = forms.MultipleChoiceField(
        label=_("SKUs"),
        error_messages={
            "required": _("Pick at least one SKU."),
            "invalid_choice": _("%(value)s is not a SKU of this shop."),
        },
    )
    streamer = forms.CharField(label=_("Streamer"), max_length=100)
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Start time"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    hours = forms.DecimalField(
        label=_("Hours on air"), min_value=Decimal("0.25"), max_value=Decimal("12"), decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.25"}),
    )  # fmt: skip

    MAX_SKUS = 50

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

    def starts_at(self) -> datetime:
        d: date = self.cleaned_data["date"]
        t: time = self.cleaned_data["time"]
        return datetime.combine(d, t, tzinfo=ZoneInfo(settings.TIME_ZONE))
