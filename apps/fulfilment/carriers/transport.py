"""The HTTP part every carrier client shares: one sync ``httpx.Client`` with explicit timeouts, an
injectable clock, form POSTs (each carrier API takes ``application/x-www-form-urlencoded``), and
the mapping of transport failures to typed errors. What an answer means is the protocol module's
business (``parse_*_answer`` takes the status and the body bytes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol, Self

import httpx

from .base import Carrier, CarrierTimeout, CarrierUnavailable, Credentials, Tracking, Waybill, WaybillRequest

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``); tests pass a fixed one."""

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class CarrierClient(Protocol):
    """What fulfilment asks of a carrier, whichever it is."""

    carrier: Carrier

    def create_waybill(self, req: WaybillRequest) -> Waybill:
        """A waybill number (and the label's routing code) for one parcel; the same
        ``req.order_code`` twice is one waybill (retry-safe)."""
        ...

    def subscribe(self, *, express: str, waybill_no: str, phone: str = "", callback_url: str = "") -> None:
        """Ask for tracking pushes of a waybill (already subscribed is success)."""
        ...

    def query(self, *, express: str, waybill_no: str, phone: str = "") -> Tracking:
        """The waybill's trace now (to repair a missed push)."""
        ...

    def close(self) -> None: ...


class CarrierHttpClient:
    """Base of the carrier clients. ``base_url`` None means the carrier's production hosts; a
    sandbox or a local simulator is passed instead (one base URL serves every API then). Use as a
    context manager or call :meth:`close`."""

    carrier: Carrier

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
        self.base_url = base_url.rstrip("/") if base_url else None
        self.clock = clock
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "livecommerce-fulfilment/1"},
        )

    def url(self, production_url: str) -> str:
        """``production_url`` itself, or its path on ``base_url`` when one is set."""
        if self.base_url is None:
            return production_url
        path = httpx.URL(production_url).raw_path.decode()
        return self.base_url + path

    def post_form(self, url: str, form: Mapping[str, str]) -> tuple[int, bytes]:
        """POST ``form`` (encoded once, UTF-8) and return (status, body). A timeout after the
        request may have gone out raises :class:`CarrierTimeout` with ``outcome_unknown``; one
        while connecting, or a refused connection, :class:`CarrierUnavailable` (not applied)."""
        try:
            response = self._http.post(url, data=dict(form))
        except httpx.ConnectTimeout as exc:
            raise CarrierUnavailable(f"{self.carrier}: connect timeout", code="connect_timeout") from exc
        except httpx.TimeoutException as exc:
            raise CarrierTimeout(
                f"{self.carrier}: {type(exc).__name__} after the client timeout", outcome_unknown=True
            ) from exc
        except httpx.TransportError as exc:
            raise CarrierUnavailable(f"{self.carrier}: {type(exc).__name__}: {exc}", code="transport") from exc
        return response.status_code, response.content

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
