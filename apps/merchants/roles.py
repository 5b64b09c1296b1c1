"""What each staff role may do: the one table the admin and the API consult.

A role is held per merchant (``Membership.role``) and by each API token (``ApiToken.role``).
Capabilities are ``(area, verb)`` pairs. An *area* is a part of the back office (each ModelAdmin
and each API view declares its ``role_area``); a *verb* is what is done there:

- ``view`` read (lists, pages, API GETs, the live dashboard); ``export`` download what one can read
- ``add`` / ``change`` / ``delete`` create, edit (and run the area's state actions: start a show,
  open a listing, adjust stock), remove
- ``confirm`` / ``cancel`` / ``note`` the order actions (confirm a paid order, cancel one — a paid
  one becomes a refund — and write merchant notes and flags 备注/旗帜)

Superusers are outside this table: they may do everything, in every merchant.
Django's own model permissions (``auth.Permission``) are not used for merchant staff: a member's
role is the only thing that grants them anything.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError

OWNER, OPERATOR, CUSTOMER_SERVICE, ANALYST = "owner", "operator", "customer_service", "analyst"
ROLES = (OWNER, OPERATOR, CUSTOMER_SERVICE, ANALYST)
ROLE_LABELS = {
    OWNER: _("Owner"),
    OPERATOR: _("Operator"),
    CUSTOMER_SERVICE: _("Customer service"),
    ANALYST: _("Analyst"),
}

# Areas of the back office.
ORDERS = "orders"  # orders, their lines, events and the order actions
BUYERS = "buyers"  # buyer records (name, phone)
PAYMENTS = "payments"  # payment notifications received
CATALOG = "catalog"  # products and SKUs
SHOWS = "shows"  # live shows and their listings
STOCK = "stock"  # stock levels and stock movements
REPORTS = "reports"  # analytics and exports
MERCHANT = "merchant"  # the merchant's own settings (name)
MEMBERS = "members"  # who may use the back office, with which role
TOKENS = "tokens"  # API tokens for streamer tools and ERPs
INTEGRATIONS = "integrations"  # outbound webhooks, platform shops, carrier accounts: secrets and endpoints
RISK = "risk"  # risk control: rules, policy, assessments; "change" also approves or rejects held orders
AREAS = (ORDERS, BUYERS, PAYMENTS, CATALOG, SHOWS, STOCK, REPORTS, MERCHANT, MEMBERS, TOKENS, INTEGRATIONS, RISK)

VERBS = ("view", "export", "add", "change", "delete", "confirm", "cancel", "note")

_READ = frozenset({"view", "export"})
_EDIT = _READ | {"add", "change", "delete"}
_ALL = frozenset(VERBS)

CAPABILITIES: dict[str, dict[str, frozenset[str]]] = {
    OWNER: {area: _ALL for area in AREAS},
    OPERATOR: {
        # "add" on orders: streamer tools with an operator token place orders through the API.
        ORDERS: _READ | {"add", "confirm", "cancel", "note"},
        BUYERS: _READ | {"change"},
        PAYMENTS: _READ,
        CATALOG: _EDIT,
        SHOWS: _EDIT,
        STOCK: _READ | {"add", "change"},
        REPORTS: _READ,
        MERCHANT: frozenset({"view"}),
        # Whoever runs the show decides held orders ("change"), and may tune a rule mid-show.
        RISK: _READ | {"change"},
    },
    CUSTOMER_SERVICE: {
        ORDERS: _READ | {"cancel", "note"},
        BUYERS: _READ | {"change"},
        PAYMENTS: _READ,
        CATALOG: _READ,
        SHOWS: _READ,
        STOCK: _READ,
        MERCHANT: frozenset({"view"}),
        RISK: _READ,  # answers a buyer asking why an order is held; does not decide it
    },
    ANALYST: {area: _READ for area in (ORDERS, BUYERS, PAYMENTS, CATALOG, SHOWS, STOCK, REPORTS, RISK)}
    | {MERCHANT: frozenset({"view"})},
}


def can(role: str | None, area: str | None, verb: str) -> bool:
    """May ``role`` do ``verb`` in ``area``? An unknown role, area or verb may do nothing."""
    if role is None or area is None:
        return False
    return verb in CAPABILITIES.get(role, {}).get(area, frozenset())


def roles_allowed(area: str | None, verb: str) -> list[str]:
    """The roles that may do ``verb`` in ``area``, most powerful first."""
    return [r for r in ROLES if can(r, area, verb)]


def any_can(roles: Iterable[str], area: str | None, verb: str) -> bool:
    return any(can(r, area, verb) for r in roles)


class InsufficientRole(ApplicationError):
    """A token or login whose role does not allow this (403)."""

    code = "insufficient_role"
    http_status = 403


def require(role: str | None, area: str | None, verb: str) -> None:
    """Raise :class:`InsufficientRole` unless ``role`` may do ``verb`` in ``area``."""
    if not can(role, area, verb):
        needed = roles_allowed(area, verb)
        message = gettext("The %(role)s role may not %(action)s %(area)s; this needs one of: %(needed)s.") % {
            "role": role or "unknown",
            "action": verb,
            "area": area or "here",
            "needed": ", ".join(needed) or "none",
        }
        raise InsufficientRole(
            message,
            extra={"role": role, "area": area, "action": verb, "roles_allowed": needed},
        )
