"""Aliyun SMS over HTTP: one ``httpx.Client`` with explicit timeouts, an injectable clock, and
the transport failures mapped to the protocol's typed errors. What is sent and what an answer
means is :mod:`apps.notifications.providers.aliyun`'s business."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from apps.notifications.providers import aliyun
from apps.notifications.providers.aliyun import AccessKey, SendResult, SmsTimeout, SmsUnavailable

Clock = Callable[[], float]
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class AliyunSmsClient:
    """One merchant's Aliyun SMS account. ``base_url`` None means ``dysmsapi.aliyuncs.com``; a
    sandbox or the local simulator (``apps.notifications.simulator``) is passed instead. Use as a
    context manager or call :meth:`close`."""

    def __init__(
        self,
        key: AccessKey,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Clock = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.key = key
        self.url = (base_url.rstrip("/") + "/") if base_url else aliyun.ENDPOINT
        self.clock = clock
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "livecommerce-notifications/1"},
        )

    def send_sms(
        self,
        *,
        phone: str,
        sign_name: str,
        template_code: str,
        template_params: Mapping[str, Any] | None = None,
        out_id: str = "",
    ) -> SendResult:
        """``SendSms`` to one number (signed POST, form-encoded). Raises ``SmsRejected`` (a
        refusal for good), ``SmsRateLimited`` (业务限流: later), ``SmsUnavailable`` (5xx, refused
        connection, connect timeout: not sent) or ``SmsTimeout`` with ``outcome_unknown`` (a
        timeout after the request went out: it may have been sent)."""
        form = aliyun.build_send_sms(
            self.key,
            phone=phone,
            sign_name=sign_name,
            template_code=template_code,
            template_params=template_params,
            out_id=out_id,
            at=self.clock(),
        )
        status, body = self._post(form)
        return aliyun.parse_send_answer(status, body)

    def _post(self, form: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            response = self._http.post(self.url, data=dict(form))
        except httpx.ConnectTimeout as exc:
            raise SmsUnavailable("sms: connect timeout", code="connect_timeout") from exc
        except httpx.TimeoutException as exc:
            raise SmsTimeout(f"sms: {type(exc).__name__} after the client timeout", outcome_unknown=True) from exc
        except httpx.TransportError as exc:
            raise SmsUnavailable(f"sms: {type(exc).__name__}: {exc}", code="transport") from exc
        return response.status_code, response.content

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
