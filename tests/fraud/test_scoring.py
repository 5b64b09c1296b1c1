"""Scoring after commit (apps/fraud/scoring.py): every order gets an assessment from the sweep, reads
show it, a flagged order is held through the state machine once paid (whichever comes first), a
review's outcome stands, linked orders are re-scored when their cluster shows itself, the merchant's
dashboard hears of it, and with no model the rules alone decide."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.catalog.models import Listing
from apps.fraud import scoring
from apps.fraud.models import Decision, RiskAssessment, RiskPolicy, RuleMode
from apps.fraud.review import review_decide
from apps.fraud.rules import forget
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.services.transitions import order_transition

from ..factories import make_listing
from .test_rules import body, post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listing(merchant):  # type: ignore[no-untyped-def]
    """On sale for a minute already: an order milliseconds after the opening is a sniper's tell."""
    listing = make_listing(merchant, quota=300, limit=3)
    Listing.objects.filter(pk=listing.pk).update(opens_at=timezone.now() - timedelta(minutes=1))
    listing.refresh_from_db()
    return listing


@pytest.fixture
def pushes(monkeypatch) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    sent: list[tuple[str, dict]] = []
    real = scoring.events.publish

    def spy(group: str, payload: dict) -> Any:
        sent.append((group, payload))
        return real(group, payload)

    monkeypatch.setattr(scoring.events, "publish", spy)
    return sent


def pay(public_id: str) -> Order:
    return order_transition(public_id=public_id, to=OrderStatus.PAID, actor="payment", reason="paid")


def farm(token: str, listing, n: int, *, start: int = 1, pays: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    """``n`` young accounts on two phones of one farm, shipping to one drop point."""
    ids = []
    for i in range(start, start + n):
        b = body(listing, 500 + i, device_id=f"farm-{i % 2}")
        b["buyer"]["registered_at"] = "2026-11-25T10:00:00+08:00"
        b["shipping_address"]["detail"] = "文三路100号3栋1202室"
        status, order = post(token, b, f"farm-{i}")
        assert status == 201, order
        ids.append(order["id"])
        if pays:
            pay(order["id"])
    return ids


def test_every_order_is_assessed_by_the_sweep_and_reads_show_it(merchant, token, api, listing):
    status, order = post(token, body(listing, 1), "fan-1")
    assert order["risk"] is None
    assert api.get(f"/api/v1/orders/{order['id']}").json()["risk"] is None  # not scored yet
    assert scoring.score_pending() == 1
    assert scoring.score_pending() == 0  # nothing left: the watermark moved on
    risk = api.get(f"/api/v1/orders/{order['id']}").json()["risk"]
    assert risk["decision"] == "allow" and risk["reasons"] == []
    assert risk["score"] is None or 0 <= risk["score"] < 50
    listed = api.get("/api/v1/orders").json()["results"]
    assert listed[0]["risk"] == risk


def test_a_farm_is_held_once_paid_through_the_state_machine(merchant, token, api, listing, pushes):
    ids = farm(token, listing, 6)
    scoring.score_pending()
    decisions = dict(RiskAssessment.objects.values_list("public_id", "decision"))
    flagged = [i for i in ids if decisions[i] == Decision.REVIEW]
    assert len(flagged) >= 4, decisions  # the rules alone flag buyers 4+ sharing the address
    risk = api.get(f"/api/v1/orders/{flagged[-1]}", HTTP_ACCEPT_LANGUAGE="zh-hans").json()["risk"]
    assert risk["decision"] == "review" and risk["reasons"]
    assert all(not r.isascii() for r in risk["reasons"]), risk["reasons"]  # in the merchant's language
    held = pay(flagged[-1])
    held.refresh_from_db()
    assert held.status == OrderStatus.ON_HOLD
    event = OrderEvent.objects.filter(order=held).order_by("-seq").first()
    assert event is not None and (event.from_status, event.to_status, event.actor) == ("paid", "on_hold", "risk")
    risk_pushes = [p for g, p in pushes if g == f"merchant.{merchant.pk}" and p["type"] == "merchant.order.risk"]
    assert {p["order"]["id"] for p in risk_pushes} >= set(flagged)


def test_an_order_paid_before_it_is_scored_is_held_by_the_scorer(merchant, token, listing):
    ids = farm(token, listing, 5, pays=True)
    assert Order.objects.filter(public_id__in=ids, status=OrderStatus.PAID).count() == 5
    scoring.score_pending()
    statuses = dict(Order.objects.filter(public_id__in=ids).values_list("public_id", "status"))
    decisions = dict(RiskAssessment.objects.values_list("public_id", "decision"))
    for public_id in ids:
        want = OrderStatus.ON_HOLD if decisions[public_id] == Decision.REVIEW else OrderStatus.PAID
        assert statuses[public_id] == want
    assert OrderStatus.ON_HOLD in statuses.values()


def test_linked_orders_allowed_earlier_are_rescored_when_their_cluster_shows_itself(merchant, token, listing):
    # Two old accounts at one flat: a household, allowed.
    first = []
    for n in (1, 2):
        b = body(listing, 700 + n)
        b["shipping_address"]["detail"] = "文三路100号3栋1202室"
        first.append(post(token, b, f"home-{n}")[1]["id"])
    scoring.score_pending()
    before = {a.public_id: a for a in RiskAssessment.objects.filter(public_id__in=first)}
    assert {a.decision for a in before.values()} == {"allow"}
    assert sorted(a.features["drop_buyers"] for a in before.values()) == [1.0, 2.0]  # as each was placed
    # Then a farm ships to the same flat: the cluster shows itself, and the two are looked at again.
    farm(token, listing, 6)
    scoring.score_pending()
    after = {a.public_id: a for a in RiskAssessment.objects.filter(public_id__in=first)}
    assert all(a.features["drop_buyers"] > 2 for a in after.values())  # re-scored with the farm in view
    assert all(after[k].updated_at > before[k].updated_at for k in first)
    assert {a.decision for a in after.values()} == {"review"}


def test_an_approved_review_stands_and_its_payment_is_not_held(merchant, token, listing, admin_user):
    ids = farm(token, listing, 5)
    scoring.score_pending()
    flagged = RiskAssessment.objects.filter(public_id__in=ids, decision=Decision.REVIEW).first()
    assert flagged is not None
    result = review_decide(assessment_id=flagged.pk, merchant_id=merchant.pk, approve=True, user=admin_user)
    assert result.outcome == "approved" and result.status == OrderStatus.PENDING_PAYMENT
    scoring.score_order(flagged.order_id)  # a re-score keeps the merchant's decision
    order = pay(flagged.public_id)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    events = list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("from_status", "to_status"))
    assert ("pending_payment", "pending_payment") in events  # the approval is a ledger event


def test_with_the_model_off_the_rules_alone_decide(merchant, token, listing):
    RiskPolicy.objects.update_or_create(merchant=merchant, defaults={"model_mode": RuleMode.OFF})
    forget(merchant.pk)
    status, order = post(token, body(listing, 1, user_agent="Mozilla/5.0 (iPhone; Android 14) aweme/30.1.0"), "k")
    scoring.score_pending()
    a = RiskAssessment.objects.get(public_id=order["id"])
    assert a.score is None and a.model_version == ""
    assert a.decision == Decision.REVIEW  # the inconsistent-client rule said review
    assert [r["code"] for r in a.reasons] == ["inconsistent_client"]


def test_with_no_model_file_the_rules_alone_decide(merchant, token, listing, monkeypatch):
    monkeypatch.setattr(scoring, "load_model", lambda: None)
    status, order = post(token, body(listing, 1), "k")
    scoring.score_pending()
    a = RiskAssessment.objects.get(public_id=order["id"])
    assert (a.decision, a.score, a.model_version) == (Decision.ALLOW, None, "")
    assert json.dumps(a.features)  # the features are still recorded (for training once reviewed)


def test_a_committed_order_kicks_a_short_scoring_burst(merchant, token, listing, settings, monkeypatch):
    """After commit an order queues a scoring task (inline in tests): it is assessed without the
    schedule, and the burst ends once nothing is left (it never holds a task worker for long)."""
    from apps.fraud import kick

    settings.FRAUD_SCORE_ON_COMMIT = True
    monkeypatch.setattr(kick, "_last_kick", 0.0)
    monkeypatch.setattr(scoring, "IDLE_EXIT_S", 0.0)
    status, order = post(token, body(listing, 1), "kicked")
    assert status == 201
    a = RiskAssessment.objects.get(public_id=order["id"])
    assert a.decision == Decision.ALLOW
    assert scoring.score_burst(seconds=1.0) == 0  # nothing left; returns at once


def test_an_order_committing_after_a_later_one_was_scored_is_scored_all_the_same(merchant, token, listing):
    """Ids are taken at insert and orders commit a moment later: the watermark must not pass an
    order that may still appear. Simulated by hiding the first order's signals row (the scorer
    only looks at orders placed with their signals, as every order since risk control is)."""
    from apps.orders.models import OrderSignals

    first = post(token, body(listing, 1), "first")[1]["id"]
    second = post(token, body(listing, 2), "second")[1]["id"]
    hidden = OrderSignals.objects.get(order__public_id=first)
    row = {f.attname: getattr(hidden, f.attname) for f in OrderSignals._meta.concrete_fields}
    hidden.delete()
    assert scoring.score_pending() == 1  # the second only: the first "has not committed"
    OrderSignals.objects.create(**row)  # ... now it has
    assert scoring.score_pending() == 1
    assert set(RiskAssessment.objects.values_list("public_id", flat=True)) == {first, second}


def test_an_order_that_cannot_be_scored_gets_the_rules_verdict_and_stops_holding_the_scan(
    merchant, token, listing, monkeypatch
):
    """A scoring that keeps failing (a bug, a bad row) must neither stall the scan behind it nor
    leave the order looking unassessed: after ``MAX_FAILURES`` tries the rules' verdict is
    recorded alone, with the reason ``not_scored``, and the watermark moves past it."""
    bad = post(token, body(listing, 1), "bad")[1]["id"]
    good = post(token, body(listing, 2), "good")[1]["id"]
    Order.objects.update(created_at=timezone.now() - timedelta(minutes=5))  # settled
    real = scoring.order_features

    def broken(facts, nb):  # type: ignore[no-untyped-def]
        if facts.key == bad:
            raise ValueError("a row the features cannot read")
        return real(facts, nb)

    monkeypatch.setattr(scoring, "order_features", broken)
    scoring.get_client().delete(scoring.WATERMARK_KEY, scoring.FAILURES_KEY)
    assert scoring.score_pending() == 1  # the good one; the bad one failed once
    for _ in range(scoring.MAX_FAILURES - 2):
        assert scoring.score_pending() == 0
        assert not RiskAssessment.objects.filter(public_id=bad).exists()
    assert scoring.score_pending() == 1  # the last failure records the rules' verdict
    unscored = RiskAssessment.objects.get(public_id=bad)
    assert (unscored.decision, unscored.score) == (Decision.ALLOW, None)
    assert unscored.reasons == [{"code": "not_scored", "params": {}}]
    assert "a row the features cannot read" in unscored.facts["error"]
    assert RiskAssessment.objects.get(public_id=good).score is not None
    bad_pk = Order.objects.get(public_id=bad).pk
    assert int(scoring.get_client().get(scoring.WATERMARK_KEY)) >= bad_pk  # it no longer holds the scan back
    assert scoring.score_pending() == 0
    assert not scoring.get_client().hexists(scoring.FAILURES_KEY, str(bad_pk))


def test_an_order_relayed_without_a_client_is_left_to_the_rules(merchant, token, listing):
    """A streamer tool that describes nothing of the buyer's client (and a sales platform's order)
    is not scored by the model, which reads a missing client as a bot's: the rules decide, and
    the assessment says why."""
    b = body(listing, 1)
    del b["client"]
    del b["buyer"]["registered_at"]
    status, order = post(token, b, "relayed")
    assert status == 201, order
    assert scoring.score_pending() == 1
    a = RiskAssessment.objects.get(public_id=order["id"])
    assert (a.decision, a.score, a.model_version) == (Decision.ALLOW, None, "")
    assert a.facts["model_skipped"] == "no_client"
    described = post(token, body(listing, 2), "described")[1]["id"]
    scoring.score_pending()
    assert RiskAssessment.objects.get(public_id=described).score is not None  # the model scores the rest
