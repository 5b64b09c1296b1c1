"""Why an order was blocked, held or scored high: reason codes and the words a merchant reads.

A decision stores reasons as data, ``{"code": "device_shared", "params": {"buyers": 7}}``, and
renders them when they are shown, in the reader's language: ``render_reason("device_shared",
{"buyers": 7})`` -> "7 buyers ordered from this device in this show" (or its zh-hans
translation). Storing codes keeps old decisions readable after a wording change or in another
language, and lets the API give both.

Two sources emit codes: the hot-path rules (velocity, shared identities, the client) and the
model's explanation (``features.explain``). Every code both use is here; an unknown code (an
older or newer deployment's) renders as the code itself, and so do parameters that do not fit
its text: rendering never raises, because it runs inside order reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

__all__ = ["REASONS", "Reason", "render_reason", "render_reasons"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    text: Promise  # lazy: translated when rendered, in the active language
    params: tuple[str, ...] = ()  # the parameters its text needs, all integers


REASONS: dict[str, Reason] = {
    # --- hot-path rules -----------------------------------------------------------------------
    "early_attempts": Reason(
        ngettext_lazy(
            "%(attempts)d attempt before the sale opened", "%(attempts)d attempts before the sale opened", "attempts"
        ),
        ("attempts",),
    ),
    "script_client": Reason(_("Sent by a script or HTTP library, not a browser or an app")),
    "headless_browser": Reason(_("Sent by an automated (headless) browser")),
    "inconsistent_client": Reason(
        _("The client's user agent contradicts itself (e.g. an iPhone with an Android engine)")
    ),
    "ip_velocity": Reason(
        ngettext_lazy(
            "%(attempts)d recent attempt from this IP address",
            "%(attempts)d recent attempts from this IP address",
            "attempts",
        ),
        ("attempts",),
    ),
    "ip24_velocity": Reason(
        ngettext_lazy(
            "%(attempts)d recent attempt from this IP network (/24)",
            "%(attempts)d recent attempts from this IP network (/24)",
            "attempts",
        ),
        ("attempts",),
    ),
    "device_velocity": Reason(
        ngettext_lazy(
            "%(attempts)d recent attempt from this device", "%(attempts)d recent attempts from this device", "attempts"
        ),
        ("attempts",),
    ),
    "phone_velocity": Reason(
        ngettext_lazy(
            "%(attempts)d recent attempt with this phone number",
            "%(attempts)d recent attempts with this phone number",
            "attempts",
        ),
        ("attempts",),
    ),
    "address_velocity": Reason(
        ngettext_lazy(
            "%(attempts)d recent attempt to this shipping address",
            "%(attempts)d recent attempts to this shipping address",
            "attempts",
        ),
        ("attempts",),
    ),
    "device_shared": Reason(
        ngettext_lazy(
            "%(buyers)d buyer ordered from this device in this show",
            "%(buyers)d buyers ordered from this device in this show",
            "buyers",
        ),
        ("buyers",),
    ),
    "device_farm": Reason(
        ngettext_lazy(
            "%(buyers)d buyer ordered from this device in this show (a phone farm)",
            "%(buyers)d buyers ordered from this device in this show (a phone farm)",
            "buyers",
        ),
        ("buyers",),
    ),
    "drop_point_shared": Reason(
        ngettext_lazy(
            "%(buyers)d buyer ships to this flat in this show, however its address is written",
            "%(buyers)d buyers ship to this flat in this show, however its address is written",
            "buyers",
        ),
        ("buyers",),
    ),
    "hoarding": Reason(_("The maximum quantity from a new account: a short payment window")),
    "phone_shared": Reason(
        ngettext_lazy(
            "%(buyers)d buyer used this phone number in this show",
            "%(buyers)d buyers used this phone number in this show",
            "buyers",
        ),
        ("buyers",),
    ),
    "address_shared": Reason(
        ngettext_lazy(
            "%(buyers)d buyer ships to this address in this show",
            "%(buyers)d buyers ship to this address in this show",
            "buyers",
        ),
        ("buyers",),
    ),
    "short_payment_window": Reason(
        ngettext_lazy(
            "Payment window shortened to %(seconds)d second",
            "Payment window shortened to %(seconds)d seconds",
            "seconds",
        ),
        ("seconds",),
    ),
    "risk_unavailable": Reason(_("Risk checks could not run for this order")),
    # --- the model's explanations (features.explain) -----------------------------------------
    "address_variants": Reason(
        _("%(buyers)d buyers ship to this flat in this show, its address written %(variants)d different ways"),
        ("buyers", "variants"),
    ),
    "linked_buyers": Reason(
        ngettext_lazy(
            "Linked to %(buyers)d other buyer in this show by a shared phone, address or device",
            "Linked to %(buyers)d other buyers in this show by a shared phone, address or device",
            "buyers",
        ),
        ("buyers",),
    ),
    "young_cluster": Reason(
        _("%(percent)d%% of the %(buyers)d linked buyers have accounts less than 30 days old"), ("percent", "buyers")
    ),
    "young_account": Reason(
        ngettext_lazy(
            "The account was created %(days)d day before this order",
            "The account was created %(days)d days before this order",
            "days",
        ),
        ("days",),
    ),
    "ordered_at_open": Reason(
        ngettext_lazy(
            "Ordered %(ms)d millisecond after the sale opened",
            "Ordered %(ms)d milliseconds after the sale opened",
            "ms",
        ),
        ("ms",),
    ),
    "max_quantity": Reason(
        ngettext_lazy(
            "Ordered the maximum of %(quantity)d unit in the first seconds",
            "Ordered the maximum of %(quantity)d units in the first seconds",
            "quantity",
        ),
        ("quantity",),
    ),
    "instant_payment": Reason(
        ngettext_lazy("Paid %(ms)d millisecond after ordering", "Paid %(ms)d milliseconds after ordering", "ms"),
        ("ms",),
    ),
    "repeat_orders": Reason(_("%(orders)d orders from %(buyers)d linked buyers in this show"), ("orders", "buyers")),
    "device_missing": Reason(_("The client sent no device id")),
    "model_pattern": Reason(_("Resembles the abusive orders the risk model was trained on")),
    "not_scored": Reason(_("The risk model could not score this order; the rules decided alone")),
    "many_addresses": Reason(
        ngettext_lazy(
            "The linked buyers ship to %(addresses)d different addresses",
            "The linked buyers ship to %(addresses)d different addresses",
            "addresses",
        ),
        ("addresses",),
    ),
}


def render_reason(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The reason's text in the active language; the code itself when it is unknown or its
    parameters do not fit (never raises)."""
    reason = REASONS.get(code)
    if reason is None:
        return str(code)
    if not reason.params:
        return str(reason.text)
    try:
        values = {name: int(params[name]) for name in reason.params} if params else None
        if values is None:
            return str(code)
        return str(reason.text % values)
    except (KeyError, TypeError, ValueError):
        logger.warning("fraud reason %s: parameters %r do not fit its text", code, params)
        return str(code)


def render_reasons(reasons: Iterable[Mapping[str, Any]]) -> list[str]:
    """``[{"code", "params"}, ...]`` as texts, in order (see ``render_reason``)."""
    return [render_reason(str(r.get("code", "")), r.get("params")) for r in reasons]
