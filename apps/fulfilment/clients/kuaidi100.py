"""Kuaidi100 快递100 over HTTP: the e-waybill v2 ``label/order``, the tracking subscription and the
real-time query as :class:`~apps.fulfilment.carriers.transport.CarrierClient` calls. Only the
wiring lives here (clock, URL, POST); forms, signatures and answer meanings are
:mod:`apps.fulfilment.carriers.kuaidi100`'s (``docs/carriers.md`` section 1).

Pushes are signed with ``credentials.push_salt``: it goes into every subscription this client
makes (and into a waybill's auto-subscription), so the push view verifies with the same salt."""

from __future__ import annotations

from apps.fulfilment.carriers import kuaidi100
from apps.fulfilment.carriers.base import Carrier, Tracking, Waybill, WaybillRequest
from apps.fulfilment.carriers.transport import CarrierHttpClient


class Kuaidi100Client(CarrierHttpClient):
    """One merchant's Kuaidi100 account (``Credentials``: ``app_id`` = customer, ``app_key`` = key,
    ``app_secret`` = the e-waybill secret, ``push_salt``). ``base_url`` points every API at a
    sandbox or the simulator (``apps.fulfilment.simulator.kuaidi100``)."""

    carrier: Carrier = "kuaidi100"  # annotated: a bare literal would not match CarrierClient.carrier

    def create_waybill(self, req: WaybillRequest) -> Waybill:
        """``label/order`` (``method=order``, ``t`` = the clock in ms). Retry-safe: without
        ``reorder`` the same ``req.order_code`` answers the first waybill. With
        ``req.callback_url`` the waybill is subscribed to tracking pushes in the same call."""
        form = kuaidi100.build_label_order(self.credentials, req, t_ms=int(self.clock() * 1000))
        status, body = self.post_form(self.url(kuaidi100.URL_LABEL_ORDER), form)
        return kuaidi100.parse_label_answer(status, body, req)

    def subscribe(self, *, express: str, waybill_no: str, phone: str = "", callback_url: str = "") -> None:
        """``/poll``: pushes of the waybill's trace to ``callback_url`` (required here: Kuaidi100
        has no account-wide push URL). Already subscribed (501) is success."""
        if not callback_url:
            raise ValueError("kuaidi100 subscriptions need a callback_url")
        form = kuaidi100.build_subscribe(
            self.credentials,
            express=express,
            waybill_no=waybill_no,
            phone=phone,
            callback_url=callback_url,
            salt=self.credentials.push_salt or None,
        )
        status, body = self.post_form(self.url(kuaidi100.URL_SUBSCRIBE), form)
        kuaidi100.parse_subscribe_answer(status, body)

    def query(self, *, express: str, waybill_no: str, phone: str = "") -> Tracking:
        """``poll/query.do``: the trace now (``phone`` is needed for SF and ZTO). No trace yet is a
        retryable :class:`~apps.fulfilment.carriers.base.CarrierRejected` with code 500."""
        form = kuaidi100.build_query(self.credentials, express=express, waybill_no=waybill_no, phone=phone)
        status, body = self.post_form(self.url(kuaidi100.URL_QUERY), form)
        return kuaidi100.parse_query_answer(status, body)
