"""The demo's sandbox pay button and the payment provider's simulator: the made-up payment is
registered with the simulator (``POST /_sim/transactions``) before it is applied, so the demo's
refunds of it are paid back; a simulator that is down or hangs never stops the payment."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.fulfilment import refunds
from apps.fulfilment.models import RefundRequest
from apps.fulfilment.payments.sandbox import REGISTER_TIMEOUT, sandbox_payment_register
from apps.fulfilment.payments.simulator import PaymentProviderSimulator
from apps.orders import hooks
from apps.orders.models import Order, OrderStatus, Payment
from apps.orders.placement.links import status_path

from ..factories import make_listing, make_token
from ..servers import free_port
from .test_refunds import place, settle

S = OrderStatus


@pytest.fixture
def simulator(settings):  # type: ignore[no-untyped-def]
    """The provider's simulator with this run's account, which knows no transaction yet."""
    with PaymentProviderSimulator(
        app_id=settings.PAYMENT_APP_ID,
        api_secret=settings.PAYMENT_API_SECRET,
        webhook_secret=settings.PAYMENT_WEBHOOK_SECRET,
        push_retries=0,
    ) as sim:
        settings.PAYMENT_PROVIDER_URL = sim.base_url
        settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # no callback arrives: the refund is queried
        yield sim


@pytest.fixture
def unpaid(merchant) -> Order:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    return place(api, make_listing(merchant, quota=10, limit=3, price="30.00"), "fan-sandbox", quantity=2)


def pay_in_sandbox(client: Client, order: Order) -> Order:
    token = status_path(order).split("t=")[1]
    r = client.post(f"/o/{order.public_id}/pay/", {"t": token})
    assert r.status_code == 303
    order.refresh_from_db()
    return order


def test_fulfilment_registers_the_hook() -> None:
    assert hooks.registry.sandbox_paid is sandbox_payment_register


@pytest.mark.django_db
def test_a_sandbox_payment_is_registered_with_the_simulator_and_its_refund_is_paid_back(  # type: ignore[no-untyped-def]
    client, unpaid, simulator
) -> None:
    order = pay_in_sandbox(client, unpaid)
    assert order.status == S.PAID
    payment = Payment.objects.get(order=order)
    assert payment.transaction_id.startswith("sandbox-")
    assert simulator.transactions == {payment.transaction_id: Decimal("60.00")}

    refund, _ = refunds.refund_request(order=order, kind="refund", source="buyer", actor="buyer", reason="拍错了")
    assert refund.status == RefundRequest.Status.REFUNDING  # not shipped: approved at once
    assert refunds.refund_send(refund.pk) == "accepted"  # the simulator knows the transaction
    assert settle(refund) == "applied"
    order.refresh_from_db()
    assert (order.status, order.refunded) == (S.REFUNDED, Decimal("60.00"))
    assert [(r.transaction_id, r.amount, r.status) for r in simulator.refunds()] == [
        (payment.transaction_id, Decimal("60.00"), "succeeded")
    ]


@pytest.mark.django_db
def test_without_the_registration_the_simulator_refuses_the_refund(client, unpaid, simulator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What the registration is for: a transaction the simulator never saw cannot be refunded."""
    monkeypatch.setattr(hooks.registry, "sandbox_paid", None)
    order = pay_in_sandbox(client, unpaid)
    assert order.status == S.PAID and simulator.transactions == {}
    refund, _ = refunds.refund_request(order=order, kind="refund", source="buyer", actor="buyer")
    assert refunds.refund_send(refund.pk) == "failed: transaction_not_found"


@pytest.mark.django_db
def test_the_payment_goes_through_when_nothing_listens_at_the_provider_url(client, unpaid, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{free_port()}"
    order = pay_in_sandbox(client, unpaid)
    assert order.status == S.PAID and Payment.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_the_payment_goes_through_after_a_short_wait_when_the_provider_hangs(client, unpaid, settings) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as hanging:  # accepts connections (the kernel's backlog), never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        started = time.monotonic()
        order = pay_in_sandbox(client, unpaid)
        waited = time.monotonic() - started
    assert order.status == S.PAID
    assert waited < REGISTER_TIMEOUT + 4  # the register call's timeout, not the provider's


@pytest.mark.django_db
def test_the_register_call_is_skipped_without_a_provider_and_refused_answers_are_false(settings, simulator) -> None:  # type: ignore[no-untyped-def]
    assert sandbox_payment_register(transaction_id="sandbox-1", amount=Decimal("12.30")) is True
    assert simulator.transactions == {"sandbox-1": Decimal("12.30")}
    assert sandbox_payment_register(transaction_id="sandbox-2", amount=Decimal("1.234")) is False  # not an amount
    settings.PAYMENT_PROVIDER_URL = simulator.base_url + "/nowhere"
    assert sandbox_payment_register(transaction_id="sandbox-3", amount=Decimal("1.00")) is False  # 404
    settings.PAYMENT_PROVIDER_URL = ""
    assert sandbox_payment_register(transaction_id="sandbox-4", amount=Decimal("1.00")) is False
    assert set(simulator.transactions) == {"sandbox-1"}
