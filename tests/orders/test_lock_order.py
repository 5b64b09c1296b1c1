"""The global lock order (docs/architecture.md) under real concurrency: stock corrections during a
running sale. A correction used to lock the stock row and then the SKU's listings while an order
locks the listing and then the stock row: on PostgreSQL the two deadlocked and one side answered
5xx. Now both lock listing before stock."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ..factories import make_listing
from .invariants import assert_consistent
from .test_flash_sale_concurrency import _buyer_jobs, _storm, _summarise

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_stock_corrections_during_a_sale_never_deadlock(merchant, token):
    listing = make_listing(merchant, quota=150, on_hand=400, limit=2)
    sku_id = listing.sku_id
    corrections: list[int] = []
    stop = threading.Event()

    def correct() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            i = 0
            while not stop.is_set() and i < 400:
                delta = -1 if i % 2 == 0 else 1  # every correction locks the SKU's listings, then its stock
                r = client.post(f"/api/v1/skus/{sku_id}/stock", {"delta": delta, "reason": "count"}, format="json")
                corrections.append(r.status_code)
                i += 1
        finally:
            connection.close()

    workers = [threading.Thread(target=correct) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        results = _storm(token, _buyer_jobs(listing.pk, 360, buyers=200))
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    summary = _summarise(results)
    assert {s for s, _ in results} <= {201, 409}, summary
    assert corrections and set(corrections) == {200}, sorted(set(corrections))
    if len(corrections) % 2:  # leave on hand as it started
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        r = client.post(f"/api/v1/skus/{sku_id}/stock", {"delta": 1, "reason": "count"}, format="json")
        assert r.status_code == 200
    sold = sum(b["lines"][0]["quantity"] for s, b in results if s == 201)
    assert_consistent(listing.pk, expect_sold=sold)


def test_opening_a_listing_while_its_show_ends_never_deadlocks(merchant, token):
    """``listing_open`` used to lock the listing and then the show (starting it), while
    ``session_end`` locks the show and then its listings: on PostgreSQL the two deadlocked."""
    from ..factories import make_session

    pairs = []
    for i in range(30):
        show = make_session(merchant, title=f"show {i}")
        pairs.append((show.pk, make_listing(merchant, quota=1, on_hand=1, session=show, open_=False).pk))
    answers: list[int] = []

    def call(path: str, barrier: threading.Barrier) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=30)
            answers.append(client.post(path, {}, format="json").status_code)
        finally:
            connection.close()

    for show_id, listing_id in pairs:
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=call, args=(f"/api/v1/listings/{listing_id}/open", barrier)),
            threading.Thread(target=call, args=(f"/api/v1/sessions/{show_id}/end", barrier)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(answers) == 60
    assert all(s < 500 for s in answers), sorted(answers)
    assert set(answers) <= {200, 409}, sorted(set(answers))
