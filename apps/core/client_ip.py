"""The client's IP address of a request: one definition for the storefront's risk signals and the
admin login throttle (``apps.core.middleware.client_ip``).

``REMOTE_ADDR`` is the peer as the ASGI server saw it (with ``--proxy-headers`` the server already
takes it from a proxy it trusts, ``FORWARDED_ALLOW_IPS``). ``X-Forwarded-For`` is believed only as
far as ``TRUSTED_PROXY_COUNT`` says (default 0: never): each proxy appends the address it received
the request from, so behind N proxies of our own the N-th address from the right is the one our
outermost proxy saw. Everything left of it was written by the client and may be anything. A header
with fewer than N addresses or a bad address where the client's should be falls back to
``REMOTE_ADDR`` (a request that did not come through our proxies, or a misconfigured count)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=8192)  # a flash sale's buyers come from a few thousand carrier addresses
def normal_ip(value: str) -> str | None:
    """``value`` as an IP address in its normal form, or None. An IPv4-mapped IPv6 address is
    the IPv4 address; a zone (``fe80::1%eth0``) is refused: a client's address has none."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            return None
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
    return str(ip)


def _address(entry: str) -> str | None:
    """One X-Forwarded-For entry as an IP address in its normal form (``1.2.3.4:5678`` and
    ``[2001:db8::1]:443``, as some balancers write them, without the port), or None."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1 : entry.find("]")] if "]" in entry else ""
    elif entry.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        entry = entry.split(":", 1)[0]
    return normal_ip(entry)


def client_ip(request: HttpRequest) -> str:
    """The client's IP address, normalised, or "" when even ``REMOTE_ADDR`` is not an address."""
    remote = _address(request.META.get("REMOTE_ADDR") or "") or ""
    trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if trusted <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded:
        return remote
    entries = forwarded.split(",")
    if len(entries) < trusted:
        return remote
    return _address(entries[-trusted]) or remote
