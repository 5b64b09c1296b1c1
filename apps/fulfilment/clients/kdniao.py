"""Kdniao 快递鸟 client: the :class:`~apps.fulfilment.carriers.transport.CarrierClient` of Kdniao
over the pure protocol of :mod:`apps.fulfilment.carriers.kdniao` (building, DataSign and parsing
live there; this module only sends). Every call is a form POST to
``kdniao.request_url(base_url or production, path)``: the production host, a local simulator, or
the sandbox gateway (one URL for every RequestType).

A reused ``OrderCode`` (the idempotency key of :class:`WaybillRequest`) is refused by Kdniao
(docs/carriers.md section 7) and the protocol has no way to look the first waybill up: 1002 query
and 1008 subscribe need its number, 1007 is the only call keyed by ``OrderCode``. So
:meth:`KdniaoClient.create_waybill` re-raises that refusal, a :class:`CarrierRejected` with code
``kdniao.DUPLICATE_ORDER_CODE`` (not retryable): the caller keeps the number the first call
returned; when that call ended without an answer (a :class:`CarrierTimeout`, ``outcome_unknown``),
the number has to be found in Kdniao's console (or the parcel given a new OrderCode, leaving the
first waybill unused). No second number is ever drawn for the same OrderCode.
"""

from __future__ import annotations

import time

import httpx

from apps.fulfilment.carriers import kdniao
from apps.fulfilment.carriers.base import Carrier, Credentials, Tracking, Waybill, WaybillRequest
from apps.fulfilment.carriers.transport import DEFAULT_TIMEOUT, CarrierHttpClient, Clock


class KdniaoClient(CarrierHttpClient):
    """Kdniao's API for one merchant account (``credentials.carrier == "kdniao"``: ``app_id`` =
    EBusinessID, ``app_key`` = AppKey). ``base_url`` None means ``kdniao.PRODUCTION_BASE_URL``;
    ``template_size`` is the label template's size where not the account's default (e.g. ``"130"``).

    Errors are the protocol's: :class:`CarrierRejected` for a refusal (duplicate OrderCode
    included, see the module docstring), :class:`CarrierUnavailable` (retryable) for 105, 5xx and
    unreadable answers or a failed connection, :class:`CarrierTimeout` (``outcome_unknown``) when
    the request went out and no answer came back in time."""

    carrier: Carrier = "kdniao"

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        clock: Clock = time.time,
        transport: httpx.BaseTransport | None = None,
        template_size: str = "",
    ) -> None:
        if credentials.carrier != "kdniao":
            raise ValueError(f"credentials are for {credentials.carrier}, not kdniao")
        super().__init__(credentials, base_url=base_url, timeout=timeout, clock=clock, transport=transport)
        self.template_size = template_size

    def _post(self, path: str, form: dict[str, str]) -> tuple[int, bytes]:
        return self.post_form(kdniao.request_url(self.base_url or kdniao.PRODUCTION_BASE_URL, path), form)

    def create_waybill(self, req: WaybillRequest) -> Waybill:
        """1007 e-waybill: the number, the 大头笔 (``routing_code``), origin/destination codes and
        the HTML print template (``label``). With ``req.callback_url`` Kdniao subscribes the
        waybill's tracking at once (``IsSubscribe``; pushes go to the console's push URL). A reused
        ``order_code`` raises :class:`CarrierRejected` ``duplicate_order_code`` (module docstring)."""
        path, form = kdniao.build_eorder(self.credentials, req, template_size=self.template_size)
        status, body = self._post(path, form)
        return kdniao.parse_eorder_answer(status, body, req)

    def subscribe(
        self, *, express: str, waybill_no: str, phone: str = "", callback_url: str = "", order_code: str = ""
    ) -> None:
        """1008 tracking subscription. Kdniao pushes (101) to the URL set in its console;
        ``callback_url`` travels as the pass-through ``Callback`` each push echoes. ``phone`` (its
        last four digits) is needed for SF."""
        path, form = kdniao.build_subscribe(
            self.credentials,
            express=express,
            waybill_no=waybill_no,
            order_code=order_code,
            callback_url=callback_url,
            phone=phone,
        )
        status, body = self._post(path, form)
        kdniao.parse_subscribe_answer(status, body)

    def query(self, *, express: str, waybill_no: str, phone: str = "") -> Tracking:
        """1002 instant query: the trace now (state ``none`` and no events before the first scan)."""
        path, form = kdniao.build_query(self.credentials, express=express, waybill_no=waybill_no, phone=phone)
        status, body = self._post(path, form)
        return kdniao.parse_query_answer(status, body)

    def cancel(self, *, express: str, order_code: str, waybill_no: str) -> None:
        """1147 cancel of an e-waybill not yet collected (path and fields unconfirmed: the protocol
        module says which it chose)."""
        path, form = kdniao.build_cancel(
            self.credentials, express=express, order_code=order_code, waybill_no=waybill_no
        )
        status, body = self._post(path, form)
        kdniao.parse_cancel_answer(status, body)
