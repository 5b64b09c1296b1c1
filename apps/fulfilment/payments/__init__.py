"""Refunds through the payment provider (issue 13, after-sales): the protocol
(:mod:`.protocol`: calls, answers, signed callbacks), the HTTP client (:mod:`.client`,
``refund_client()`` from the settings), a local simulator (:mod:`.simulator`, ``manage.py
payment_simulator``, which ``./run`` starts with the demo) and the demo's sandbox payments told to
it (:mod:`.sandbox`). ``docs/payment-provider.md`` is the reference.

The after-sales services call it like this::

    with refund_client() as provider:
        answer = provider.create_refund(RefundCall(refund_no=..., transaction_id=..., amount=...,
                                                   reason=..., notify_url=...))

and the callback view verifies with ``verify_and_parse_callback(body, ts, sig,
secret=settings.PAYMENT_WEBHOOK_SECRET, max_skew=settings.PAYMENT_MAX_SKEW_SECONDS)``.
"""
