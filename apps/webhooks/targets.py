"""Where a webhook may be sent (SSRF stance).

An endpoint URL must be ``https://`` with a host name or a public IP address. Plain ``http://``
and private, loopback, link-local or otherwise non-public addresses are accepted only while
``WEBHOOK_ALLOW_PRIVATE_TARGETS`` is on (DEBUG and the tests: a receiver on 127.0.0.1). The check
runs when an endpoint is saved (the URL as written) and again before every request (every address
the host name resolves to), so a name that later points inside the network is refused at send time.
Redirects are never followed. Left: a DNS answer that changes between the check and the connect
(rebinding within one request); run the worker behind an egress proxy where that matters.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import InvalidUrl


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def _public(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%")[0]).is_global


def check_url(url: str) -> str:
    """The URL, stripped, if an endpoint may have it; raises InvalidUrl (400 ``invalid_url``)."""
    url = (url or "").strip()
    if len(url) > 500:
        raise InvalidUrl(_("url: at most 500 characters"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUrl(_("url: not a valid URL")) from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidUrl(_("url: must be an https:// URL with a host"))
    if parts.username or parts.password:
        raise InvalidUrl(_("url: must not carry a user name or password"))
    if port == 0:
        raise InvalidUrl(_("url: not a valid port"))
    try:  # a name that cannot be looked up (empty labels, a label over 63, a bad punycode label)
        host.encode("idna")
    except (UnicodeError, ValueError):
        raise InvalidUrl(_("url: not a valid host name")) from None
    private = not _is_public_host(host)
    if parts.scheme == "http" and not _allow_private():
        raise InvalidUrl(_("url: must use https://"))
    if private and not _allow_private():
        raise InvalidUrl(_("url: must not point at a private, loopback or link-local address"))
    return url


def _is_public_host(host: str) -> bool:
    try:
        return _public(host)
    except ValueError:  # a name, not an address literal
        return host.lower() not in ("localhost", "localhost.localdomain") and not host.lower().endswith(
            (".localhost", ".local", ".internal")
        )


def check_resolved(url: str) -> None:
    """Before a request: every address the host resolves to must be public (unless allowed)."""
    if _allow_private():
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:
        raise InvalidUrl(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        if not _public(str(info[4][0])):
            raise InvalidUrl(_("%(host)s resolves to a non-public address") % {"host": host})
