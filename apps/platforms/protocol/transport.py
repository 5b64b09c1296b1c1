"""The HTTP part every platform client shares: one sync ``httpx.Client`` with explicit timeouts,
an injectable clock, and the mapping of transport failures to typed, retryable errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from .base import Credentials, MalformedPayload, PlatformTimeout, PlatformUnavailable

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests pass a fixed one."""

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class PlatformHttpClient:
    """Base of the three clients. ``base_url`` defaults to the platform's production gateway;
    a sandbox gateway or a local simulator is passed instead. Use as a context manager or call
    :meth:`close`."""

    platform = ""
    production_base_url = ""

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Clock = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.credentials = credentials
        self.base_url = (base_url or self.production_base_url).rstrip("/")
        self.clock = clock
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "livecommerce-platforms/1"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON object. Timeouts raise
        :class:`PlatformTimeout`; connection failures, 5xx, 429 and non-JSON answers raise
        :class:`PlatformUnavailable` (all retryable). Other statuses return the body for the
        platform's envelope check."""
        try:
            response = self._http.request(method, url, params=params, data=data, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise PlatformTimeout(f"{self.platform}: {type(exc).__name__} after the client timeout") from exc
        except httpx.TransportError as exc:
            raise PlatformUnavailable(f"{self.platform}: {type(exc).__name__}: {exc}", code="transport") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise PlatformUnavailable(
                f"{self.platform}: HTTP {response.status_code}",
                code=f"http_{response.status_code}",
                http_status=response.status_code,
            )
        try:
            body = json.loads(response.content)
        except ValueError:
            raise PlatformUnavailable(
                f"{self.platform}: HTTP {response.status_code} answer is not JSON",
                code="bad_response",
                http_status=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise MalformedPayload(f"{self.platform}: the answer is not a JSON object", retryable=True)
        return body
