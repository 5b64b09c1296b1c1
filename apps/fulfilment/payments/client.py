"""The payment provider's refund API over HTTP: one ``httpx.Client`` with explicit timeouts, an
injectable clock, signed JSON calls, and transport failures mapped to the protocol's typed errors.
What is sent and what an answer means is :mod:`.protocol`'s business."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx
from django.conf import settings

from .protocol import (
    JSON_TYPE,
    PATH_REFUNDS,
    ProviderCode,
    ProviderNotConfigured,
    ProviderRefused,
    ProviderUnavailable,
    RefundAnswer,
    RefundCall,
    parse_refund_answer,
    request_headers,
)

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests pass a fixed one."""


class RefundClient:
    """Our account with the payment provider (``base_url``, ``app_id``, ``api_secret``): the local
    simulator (``apps.fulfilment.payments.simulator``) or the provider's host. Use as a context
    manager or call :meth:`close`. Every method raises :class:`ProviderRefused` (a 4xx: do not
    repeat the call) or :class:`ProviderUnavailable` (call again later, with the same refund_no)."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        api_secret: str,
        *,
        timeout: httpx.Timeout | float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._secret = api_secret
        self.clock = clock
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, 3.0))
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "livecommerce-refunds/1", "Accept": "application/json"},
        )

    def create_refund(self, call: RefundCall) -> RefundAnswer:
        """``POST /v1/refunds``. Safe to repeat: the same ``call.refund_no`` (same transaction and
        amount) answers the refund the first call made; a different one is refused with
        ``refund_no_conflict``. The answer is usually ``processing``; the outcome comes by callback
        (or :meth:`query_refund`)."""
        body = call.body()
        status, answer = self._send("POST", PATH_REFUNDS, body)
        refund = parse_refund_answer(status, answer)
        self._check_matches(refund, call.refund_no)
        if refund.transaction_id != call.transaction_id or refund.amount != call.amount:
            raise ProviderUnavailable(
                f"the answer for {call.refund_no} is for {refund.transaction_id} {refund.amount}, not the call's"
            )
        return refund

    def query_refund(self, refund_no: str) -> RefundAnswer | None:
        """``GET /v1/refunds/{refund_no}``: the refund now, or None if the provider has none by that
        number (the create never arrived: it may be sent again)."""
        status, answer = self._send("GET", f"{PATH_REFUNDS}/{quote(refund_no, safe='')}", b"")
        try:
            refund = parse_refund_answer(status, answer)
        except ProviderRefused as exc:
            if exc.code == ProviderCode.REFUND_NOT_FOUND:
                return None
            raise
        self._check_matches(refund, refund_no)
        return refund

    @staticmethod
    def _check_matches(refund: RefundAnswer, refund_no: str) -> None:
        if refund.refund_no != refund_no:
            raise ProviderUnavailable(f"the answer is for refund {refund.refund_no}, not {refund_no}")

    def _send(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """One signed call; (status, body). A timeout once the request may have gone out is
        ``outcome_unknown``; a refused connection or a connect timeout is not."""
        headers = request_headers(app_id=self.app_id, secret=self._secret, body=body, timestamp=int(self.clock()))
        if body:
            headers["Content-Type"] = JSON_TYPE
        try:
            response = self._http.request(method, self.base_url + path, content=body or None, headers=headers)
        except httpx.ConnectTimeout as exc:
            raise ProviderUnavailable("payment provider: connect timeout") from exc
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(
                f"payment provider: {type(exc).__name__} after the client timeout", outcome_unknown=True
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"payment provider: {type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def refund_client() -> RefundClient:
    """A client for the provider the settings name (``PAYMENT_PROVIDER_URL``, ``PAYMENT_APP_ID``,
    ``PAYMENT_API_SECRET``, ``PAYMENT_PROVIDER_TIMEOUT``); :class:`ProviderNotConfigured` (a
    :class:`ProviderUnavailable`: the refund waits) when one of the first three is empty."""
    names = ("PAYMENT_PROVIDER_URL", "PAYMENT_APP_ID", "PAYMENT_API_SECRET")
    missing = [name for name in names if not getattr(settings, name)]
    if missing:
        raise ProviderNotConfigured("refunds are not configured: set " + ", ".join(missing))
    return RefundClient(
        settings.PAYMENT_PROVIDER_URL,
        settings.PAYMENT_APP_ID,
        settings.PAYMENT_API_SECRET,
        timeout=settings.PAYMENT_PROVIDER_TIMEOUT,
    )
