"""The gate's tallies: every fresh decision of ``reserve.lua`` is counted (no extra round trip),
handed to the database exactly once (a hand-over that was not acknowledged is repeated, never
added twice), and shown in the show's report as the listing's attempts, refusals and conversion."""

from __future__ import annotations

import pytest
import redis
from django.test import TestCase

from apps.core.redis import get_client
from apps.orders.models import ListingTally
from apps.orders.placement.gate import scripts as gate
from apps.orders.placement.gate.keys import listing_keys
from apps.orders.services import tallies as tallies_service
from apps.orders.services.tallies import take_tallies
from apps.reports.rollups import rollup_session

from ..factories import make_listing, order_body

NOW = 1_800_000_000_000


def _load(listing_id: int, *, quota: int = 2, limit: int = 1, opens: int = NOW - 1000) -> None:
    meta = gate.GateMeta(closed=False, opens_ms=opens, closes_ms=0, quota=quota, limit=limit)
    gate.gate_load(listing_id, meta, [])


def _counts(listing_id: int) -> dict[str, str]:
    return get_client().hgetall(listing_keys(listing_id)["tally"])


def test_the_gate_counts_each_fresh_decision_and_no_replay() -> None:
    _load(7, quota=2, limit=1)
    said = [
        gate.gate_reserve(7, hold_id=h, buyer=b, quantity=q, now_ms=NOW, remember=True).status
        for h, b, q in [("h1", "a", 1), ("h1", "a", 1), ("h2", "a", 1), ("h3", "b", 1), ("h4", "c", 1), ("h5", "d", 2)]
    ]
    assert said == ["ok", "ok", "over_limit", "ok", "sold_out", "over_limit"]
    assert _counts(7) == {"ok": "2", "over_limit": "2", "sold_out": "1"}  # the replay of h1 is not an attempt
    assert gate.gate_release(7, hold_id="h1") == "released"
    assert gate.gate_reserve(7, hold_id="h1", buyer="a", quantity=1, now_ms=NOW, remember=True).status == "seen"
    assert gate.gate_reserve(7, hold_id="h9", buyer="e", quantity=1, now_ms=NOW - 5000).status == "closed"
    assert gate.gate_reserve(8, hold_id="h1", buyer="a", quantity=1, now_ms=NOW).status == "not_loaded"
    assert _counts(7) == {"ok": "2", "over_limit": "2", "sold_out": "1", "closed": "1"}
    assert _counts(8) == {}


def test_a_hand_over_is_repeated_until_acknowledged_with_the_same_number() -> None:
    _load(9, quota=1)
    for n in range(3):
        gate.gate_reserve(9, hold_id=f"h{n}", buyer=f"b{n}", quantity=1, now_ms=NOW)
    first = gate.gate_tally_drain(9)
    assert first is not None and first.counts == {"ok": 1, "closed": 0, "over_limit": 0, "sold_out": 2}
    gate.gate_reserve(9, hold_id="h7", buyer="b7", quantity=1, now_ms=NOW)  # counted in a new tally
    again = gate.gate_tally_drain(9)
    assert again == first  # not acknowledged: the same hand-over, same number
    assert gate.gate_tally_ack(9, first.seq + 1) is False
    assert gate.gate_tally_ack(9, first.seq) is True
    later = gate.gate_tally_drain(9)
    assert later is not None and later.seq > first.seq and later.counts["sold_out"] == 1
    assert gate.gate_tally_ack(9, later.seq) and gate.gate_tally_drain(9) is None


@pytest.mark.django_db
def test_take_tallies_adds_each_hand_over_once_even_when_its_acknowledgement_is_lost(merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=1)
    _load(listing.pk, quota=1)
    for n in range(4):
        gate.gate_reserve(listing.pk, hold_id=f"h{n}", buyer=f"b{n}", quantity=1, now_ms=NOW)

    def lost(*_a, **_k):
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(tallies_service.gate, "gate_tally_ack", lost)
    assert take_tallies([listing.pk]) == 1
    monkeypatch.undo()
    assert take_tallies([listing.pk]) == 0  # the same hand-over again: the row has taken its number
    row = ListingTally.objects.get(listing=listing)
    assert (row.accepted, row.sold_out, row.attempts, row.merchant_id) == (1, 3, 4, merchant.pk)
    assert gate.gate_tally_drain(listing.pk) is None  # acknowledged the second time
    gate.gate_reserve(listing.pk, hold_id="h9", buyer="b9", quantity=1, now_ms=NOW)
    assert take_tallies([listing.pk, 999_999]) == 1  # an unknown listing is skipped
    row.refresh_from_db()
    assert (row.accepted, row.sold_out) == (1, 4)


@pytest.mark.django_db
def test_a_stalled_hand_over_overtaken_by_later_ones_adds_nothing(merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two rollups at once: B takes hand-over 1 and stalls; A adds it and acknowledges it; C takes
    and adds hand-over 2; B wakes up and offers hand-over 1 again: the row refuses it."""
    listing = make_listing(merchant, quota=1)
    _load(listing.pk, quota=1)
    for n in range(4):
        gate.gate_reserve(listing.pk, hold_id=f"h{n}", buyer=f"b{n}", quantity=1, now_ms=NOW)
    stalled = gate.gate_tally_drain(listing.pk)  # B
    assert stalled is not None
    assert take_tallies([listing.pk]) == 1  # A: the same hand-over, added and acknowledged
    gate.gate_reserve(listing.pk, hold_id="h8", buyer="b8", quantity=1, now_ms=NOW)
    assert take_tallies([listing.pk]) == 1  # C: the next one
    row = ListingTally.objects.get(listing=listing)
    assert (row.accepted, row.sold_out) == (1, 4)
    monkeypatch.setattr(tallies_service.gate, "gate_tally_drain", lambda *_a, **_k: stalled)
    assert take_tallies([listing.pk]) == 0  # B resumes with hand-over 1
    row.refresh_from_db()
    assert (row.accepted, row.sold_out, row.attempts) == (1, 4, 5)


@pytest.mark.django_db
def test_take_tallies_without_redis_keeps_the_counts_for_later(merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=1)
    _load(listing.pk, quota=1)
    gate.gate_reserve(listing.pk, hold_id="h1", buyer="b1", quantity=1, now_ms=NOW)

    def down(*_a, **_k):
        raise redis.ConnectionError("gone")

    monkeypatch.setattr(tallies_service.gate, "gate_tally_drain", down)
    assert take_tallies([listing.pk]) == 0
    assert not ListingTally.objects.exists()
    monkeypatch.undo()
    assert take_tallies([listing.pk]) == 1 and ListingTally.objects.get().accepted == 1


@pytest.mark.django_db
def test_the_report_shows_a_floods_attempts_refusals_and_conversion(merchant, api, other_api) -> None:  # type: ignore[no-untyped-def]
    """Orders through the real API: 3 units, 8 buyers, one asks twice. The report's listing counts
    the gate's answers and the conversion is orders / attempts."""
    listing = make_listing(merchant, quota=3, limit=1)
    answers = []
    with TestCase.captureOnCommitCallbacks(execute=True):
        for n in range(8):
            r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"f{n}"), format="json")
            answers.append(r.status_code)
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer="f0"), format="json")
        answers.append(r.json().get("code"))
    assert answers == [201, 201, 201] + [409] * 5 + ["over_buyer_limit"], answers
    report = rollup_session(listing.session_id)
    assert report is not None
    (li,) = report.figures["listings"]
    assert (li["orders"], li["attempts"], li["refused"]) == (3, 9, {"closed": 0, "over_limit": 1, "sold_out": 5})
    assert li["conversion"] == "0.3333"
    body = api.get(f"/api/v1/reports/sessions/{listing.session_id}").json()
    assert body["figures"]["listings"][0]["attempts"] == 9 and body["figures"]["listings"][0]["conversion"] == "0.3333"
    assert other_api.get(f"/api/v1/reports/sessions/{listing.session_id}").status_code == 404
    # a second rollup adds nothing: the hand-over was taken once
    report = rollup_session(listing.session_id)
    assert report is not None and report.figures["listings"][0]["attempts"] == 9
