"""The hot-path rules risk control knows: what each counts, its default threshold, action and mode,
and what it catches in words (``rules.py`` explains the counters; a merchant's ``RiskRule`` rows
override the defaults). No models here, so the models can name a rule by its label."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

B, R, S = "block", "review", "short_window"  # RuleAction's values
ON, DRY = "on", "dry_run"  # RuleMode's values


@dataclass(frozen=True)
class RuleSpec:
    code: str
    metric: str
    threshold: int
    action: str
    mode: str
    label: object  # lazy text: what the rule catches, for the admin


CATALOGUE: dict[str, RuleSpec] = {
    r.code: r
    for r in (
        RuleSpec("early_attempts", "early", 1, B, ON, _("Attempts by the buyer or device before the listing opened")),
        RuleSpec("script_client", "ua_script", 0, B, ON, _("A script or HTTP library instead of an app or browser")),
        RuleSpec("headless_browser", "ua_headless", 0, B, ON, _("A headless (automated) browser")),
        RuleSpec("inconsistent_client", "ua_inconsistent", 0, R, ON, _("A user agent that contradicts itself")),
        RuleSpec("device_velocity", "dev.l", 10, B, ON, _("Attempts from one device on the listing")),
        RuleSpec("phone_velocity", "phone.l", 8, R, ON, _("Attempts with one phone on the listing")),
        RuleSpec("address_velocity", "addr.l", 10, R, ON, _("Attempts to one address on the listing")),
        RuleSpec("ip_velocity", "ip.l", 600, R, DRY, _("Attempts from one IP on the listing (carrier NAT!)")),
        RuleSpec("ip24_velocity", "ip24.l", 1500, R, DRY, _("Attempts from one IP /24 on the listing")),
        RuleSpec("device_shared", "dev.b", 3, R, ON, _("Buyers ordering from one device in the show")),
        RuleSpec("device_farm", "dev.b", 8, B, ON, _("Buyers ordering from one device in the show (a phone farm)")),
        RuleSpec("phone_shared", "phone.b", 4, R, ON, _("Buyers using one phone in the show")),
        RuleSpec("address_shared", "addr.b", 4, R, ON, _("Buyers shipping to one address in the show")),
        RuleSpec(
            "drop_point_shared", "drop.b", 4, R, ON, _("Buyers shipping to one flat (however written) in the show")
        ),
        RuleSpec("hoarding", "hoard", 0, S, ON, _("The maximum quantity from a new account")),
    )
}
