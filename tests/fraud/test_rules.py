"""The hot-path rules (apps/fraud/hotpath.py + lua/check.lua), through the real order API: each
rule fires on what it counts and not below its threshold; dry run records and changes nothing; a
block holds no stock and writes no order; a retry gets the same verdict; rules are per merchant;
the signals are stored with the order; Redis gone lets the order through."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.catalog import services as catalog
from apps.catalog.models import Listing
from apps.fraud import rules as risk_rules
from apps.fraud.models import Decision, RiskAssessment, RiskRule, RuleAction, RuleMode
from apps.inventory.models import Stock
from apps.orders.models import Order, OrderSignals
from apps.orders.placement.gate.scripts import gate_state

from ..factories import make_listing, make_session, make_token, order_body
from ..orders.test_bad_input import _drf

pytestmark = pytest.mark.django_db(transaction=True)

APP_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 aweme/30.1.0"  # noqa: E501


def body(listing: Listing, n: int, *, buyer: str | None = None, quantity: int = 1, **client: Any) -> dict:
    b = order_body(listing.pk, buyer=buyer or f"buyer-{n}", quantity=quantity)
    b["shipping_address"]["phone"] = f"139{n:08d}"
    b["buyer"]["phone"] = f"139{n:08d}"
    b["shipping_address"]["detail"] = f"文三路 {n} 号"
    b["client"] = {"ip": f"112.10.{n // 200}.{n % 200 + 1}", "device_id": f"dev-{n}", "user_agent": APP_UA, **client}
    b["buyer"]["registered_at"] = "2022-05-01T10:00:00+08:00"
    return b


def post(token: str, payload: dict, key: str) -> tuple[int, dict]:
    status, answer, _ = _drf(token, json.dumps(payload, ensure_ascii=False).encode(), {"Idempotency-Key": key})
    return status, answer


def rules_of(order_id: str) -> dict:
    return OrderSignals.objects.get(order__public_id=order_id).rules


def window(order: Order) -> int:
    """The order's payment window in whole seconds (``created_at`` is stamped apart from ``pay_by``'s now)."""
    return round((order.pay_by - order.created_at).total_seconds())


@pytest.fixture
def listing(merchant):  # type: ignore[no-untyped-def]
    return make_listing(merchant, quota=200, limit=3)


def test_a_clean_order_is_allowed_and_its_signals_are_stored_with_it(merchant, token, listing):
    status, order = post(token, body(listing, 1), "k1")
    assert status == 201 and order["risk"] is None  # not scored yet
    signals = OrderSignals.objects.get(order__public_id=order["id"])
    assert (signals.ip, signals.device_id, signals.user_agent) == ("112.10.0.2", "dev-1", APP_UA)
    assert signals.buyer_registered_at == datetime(2022, 5, 1, 2, 0, tzinfo=UTC)
    assert signals.rules["decision"] == "allow" and signals.rules["hits"] == []
    assert signals.rules["metrics"]["dev.l"] == 1 and signals.rules["metrics"]["addr.b"] == 1
    pay_by = datetime.fromisoformat(order["pay_by"].replace("Z", "+00:00"))
    assert pay_by - timezone.now() > timedelta(seconds=800)  # the listing's 900 s window


@pytest.mark.parametrize(
    ("ua", "code"),
    [
        ("python-requests/2.32.3", "script_client"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/124.0.0.0 Safari/537.36",
            "headless_browser",
        ),
    ],
)
def test_script_and_headless_clients_are_blocked_with_nothing_kept_or_written(
    merchant, token, listing, ua, code, monkeypatch
):
    from apps.fraud import hotpath

    record = hotpath._record_block
    held_while_recording: list[dict] = []

    def recording(*args: Any, **kwargs: Any) -> None:
        state = gate_state(listing.pk)
        held_while_recording.append(state["holds"] if state else {})
        record(*args, **kwargs)

    monkeypatch.setattr(hotpath, "_record_block", recording)
    status, answer = post(token, body(listing, 1, user_agent=ua), "bot-1")
    assert held_while_recording == [{}]  # the gate's unit went back before the attempt was written
    assert status == 403 and answer["code"] == "risk_blocked", answer
    assert answer["extra"]["reasons"] == [code]
    assert Order.objects.count() == 0 and OrderSignals.objects.count() == 0
    listing.refresh_from_db()
    assert listing.sold == 0
    assert Stock.objects.get(sku_id=listing.sku_id).reserved == 0
    state = gate_state(listing.pk)
    assert state is None or (state["left"] == 200 and state["holds"] == {})
    blocked = RiskAssessment.objects.get()
    assert (blocked.order_id, blocked.decision, blocked.listing_id) == (None, Decision.BLOCK, listing.pk)
    assert blocked.reasons == [{"code": code, "params": {}}]
    # A retry of the same key: the same answer, counted once, recorded once.
    again = post(token, body(listing, 1, user_agent=ua), "bot-1")
    assert again == (status, answer)
    assert RiskAssessment.objects.count() == 1


def test_attempts_before_open_count_and_the_second_one_blocks_at_open(merchant, token):
    listing = make_listing(merchant, quota=50, limit=1, open_=False)
    for i in range(2):  # a sniper firing before the listing opens: 409 listing_closed, counted
        status, answer = post(token, body(listing, 7), f"early-{i}")
        assert (status, answer["code"]) == (409, "listing_closed")
    assert post(token, body(listing, 8), "fan-early")[0] == 409  # a fan who pressed once too early
    catalog.listing_open(listing=listing)
    status, answer = post(token, body(listing, 7), "at-open")
    assert status == 403 and answer["extra"]["reasons"] == ["early_attempts"]
    status, order = post(token, body(listing, 8), "fan-at-open")  # threshold: more than 1
    assert status == 201 and rules_of(order["id"])["metrics"]["early"] == 1


def test_a_sniper_reusing_one_key_before_and_at_open_is_counted_afresh_at_open(merchant, token):
    """The guard remembers an attempt's numbers per key (a retry gets the same verdict); an
    attempt the gate refused as not open forgets them, so one key fired before and after the
    opening is judged at open with its early attempts, like a sniper using fresh keys."""
    listing = make_listing(merchant, quota=50, limit=1, open_=False)
    for _ in range(2):
        status, answer = post(token, body(listing, 7), "one-key")
        assert (status, answer["code"]) == (409, "listing_closed")
    catalog.listing_open(listing=listing)
    status, answer = post(token, body(listing, 7), "one-key")
    assert status == 403 and answer["extra"]["reasons"] == ["early_attempts"], answer
    # and, refused, the key keeps its verdict from then on
    assert post(token, body(listing, 7), "one-key") == (status, answer)


def test_one_device_shared_by_buyers_is_reviewed_then_blocked_as_a_farm(merchant, token, listing):
    verdicts = []
    for n in range(1, 11):
        status, answer = post(token, body(listing, n, device_id="farm-phone-1"), f"farm-{n}")
        verdicts.append(status if status != 201 else rules_of(answer["id"])["decision"])
    # 1-3 buyers on one device: a family phone; 4-9: reviewed; the 9th and later: blocked.
    assert verdicts == ["allow"] * 3 + ["review"] * 5 + [403, 403]
    reviewed = Order.objects.get(idempotency_key="farm-4")
    assert rules_of(reviewed.public_id)["hits"] == [["device_shared", 4]]
    # A reviewed order also gets the short payment window (120 s instead of 900 s).
    assert window(reviewed) == 120


def test_one_drop_point_written_many_ways_is_one_address(merchant, token, listing):
    writings = [
        "文三路100号3栋1202室",
        "文三路100号3幢12-02",
        "文三路１００号３号楼1202",
        "文 三 路 100 号 3 栋 1202",
        "文三路100号3栋Rm1202",
    ]  # noqa: E501
    decisions = []
    for n, detail in enumerate(writings, start=1):
        b = body(listing, n)
        b["shipping_address"]["detail"] = detail
        status, answer = post(token, b, f"jig-{n}")
        assert status == 201
        decisions.append(rules_of(answer["id"])["decision"])
    assert decisions == ["allow"] * 4 + ["review"]
    hits = rules_of(Order.objects.get(idempotency_key="jig-5").public_id)["hits"]
    assert hits == [["address_shared", 5], ["drop_point_shared", 5]]


def test_max_quantity_from_a_new_account_gets_the_short_payment_window(merchant, token, listing):
    b = body(listing, 1, quantity=3)
    b["buyer"]["registered_at"] = (timezone.now() - timedelta(days=10)).isoformat()
    status, order = post(token, b, "hoard-1")
    assert status == 201
    stored = rules_of(order["id"])
    assert stored["decision"] == "allow" and stored["hits"] == [["hoarding", 1]]
    assert stored["pay_window_seconds"] == 120
    o = Order.objects.get(public_id=order["id"])
    assert window(o) == 120
    # An old account buying the maximum keeps the listing's window.
    old = body(listing, 2, quantity=3)
    status, order = post(token, old, "hoard-2")
    o = Order.objects.get(public_id=order["id"])
    assert window(o) == 900


def test_a_rule_in_dry_run_records_what_it_would_have_done_and_changes_nothing(merchant, token, listing):
    risk_rules.ensure_rules(merchant.pk)
    RiskRule.objects.filter(merchant=merchant, code="script_client").update(mode=RuleMode.DRY_RUN)
    risk_rules.forget(merchant.pk)
    status, order = post(token, body(listing, 1, user_agent="curl/8.5.0"), "dry-1")
    assert status == 201
    stored = rules_of(order["id"])
    assert stored["decision"] == "allow" and stored["hits"] == [] and stored["dry"] == [["script_client", 1]]


def test_a_rule_turned_off_or_given_a_higher_threshold_does_not_fire(merchant, token, listing):
    risk_rules.ensure_rules(merchant.pk)
    RiskRule.objects.filter(merchant=merchant, code="script_client").update(mode=RuleMode.OFF)
    RiskRule.objects.filter(merchant=merchant, code="device_shared").update(threshold=5, action=RuleAction.BLOCK)
    risk_rules.forget(merchant.pk)
    assert post(token, body(listing, 1, user_agent="curl/8.5.0"), "off-1")[0] == 201
    statuses = [post(token, body(listing, n, device_id="d"), f"t-{n}")[0] for n in range(2, 9)]
    assert statuses == [201] * 5 + [403, 403]  # buyers 1..5 on the device pass, the 6th is over 5


def test_rules_are_per_merchant(merchant, token, other_merchant, listing):
    other_token = make_token(other_merchant)
    other_listing = make_listing(other_merchant, quota=20, limit=3)
    risk_rules.ensure_rules(merchant.pk)
    RiskRule.objects.filter(merchant=merchant, code="script_client").update(mode=RuleMode.OFF)
    risk_rules.forget(merchant.pk)
    assert post(token, body(listing, 1, user_agent="curl/8.5.0"), "m1")[0] == 201
    assert post(other_token, body(other_listing, 1, user_agent="curl/8.5.0"), "m2")[0] == 403
    # Counters are per show too: the other merchant's show does not see this one's device.
    assert RiskAssessment.objects.get().merchant_id == other_merchant.pk


def test_counters_are_per_show(merchant, token):
    one = make_listing(merchant, quota=20, limit=3, session=make_session(merchant, "A"))
    two = make_listing(merchant, quota=20, limit=3, session=make_session(merchant, "B"))
    for n in range(1, 4):
        post(token, body(one, n, device_id="shared"), f"a-{n}")
    status, order = post(token, body(two, 4, device_id="shared"), "b-4")
    assert rules_of(order["id"])["metrics"]["dev.b"] == 1  # a new show starts from zero


def test_a_shows_counters_are_one_hash_holding_only_what_a_rule_reads(merchant, token):
    from apps.core.redis import get_client
    from apps.fraud.hotpath import TTL_SECONDS, risk_key

    show = make_session(merchant, "S")
    one = make_listing(merchant, quota=20, limit=3, session=show)
    two = make_listing(merchant, quota=20, limit=3, session=show)
    attempts = [(one, 1, "h-1"), (one, 1, "h-2"), (two, 1, "h-3"), (two, 2, "h-4")]
    for n, (listing, buyer, key) in enumerate(attempts):
        b = body(listing, buyer, device_id="d-shared")  # one device (and a flat: a drop point)
        b["shipping_address"]["detail"] = "文三路100号3栋1202室"
        status, order = post(token, b, key)
        assert status == 201, order
        metrics = rules_of(order["id"])["metrics"]
        # exactly the counters the catalogue's rules read, and nothing else
        assert set(metrics) == {spec.metric for spec in risk_rules.CATALOGUE.values()}
        assert metrics["dev.l"] == [1, 2, 1, 2][n]  # attempts per listing
        # distinct buyers in the show, across its listings: buyer 1 is counted once
        assert metrics["dev.b"] == metrics["drop.b"] == [1, 1, 1, 2][n]
    redis = get_client()
    h = risk_key(show.pk, one.pk)
    assert redis.keys("lc:{risk:*") == [h]  # one key for the show
    assert TTL_SECONDS - 60 < redis.ttl(h) <= TTL_SECONDS
    kinds: dict[str, set[str]] = {"velocity": set(), "count": set(), "member": set(), "other": set()}
    for field in redis.hkeys(h):
        parts = field.split("|")
        if field.startswith("o:"):
            continue  # the numbers remembered per order
        if parts[0] == "b" and len(parts) == 2:
            kinds["count"].add(parts[1].split(":")[0])  # "b|<dim>:<value>"
        elif parts[0] == "b" and len(parts) == 3:
            kinds["member"].add(parts[1].split(":")[0])  # "b|<dim>:<value>|<buyer>"
        elif len(parts) == 2 and parts[0].isdigit():
            kinds["velocity"].add(f"{parts[0]}|{parts[1].split(':')[0]}")  # "<listing>|<dim>:<value>"
        else:
            kinds["other"].add(field)
    assert kinds["velocity"] == {f"{lst.pk}|{d}" for lst in (one, two) for d in ("ip", "ip24", "dev", "phone", "addr")}
    assert kinds["count"] == kinds["member"] == {"dev", "phone", "addr", "drop"}
    assert kinds["other"] == set()


def test_the_counters_expire_after_the_show_however_they_began(merchant, token):
    from apps.core.redis import get_client
    from apps.fraud.hotpath import TTL_SECONDS, risk_key

    listing = make_listing(merchant, quota=5, limit=1, open_=False)
    h, redis = risk_key(listing.session_id, listing.pk), get_client()
    assert post(token, body(listing, 1), "poke")[0] == 409  # only an early attempt so far
    assert TTL_SECONDS - 60 < redis.ttl(h) <= TTL_SECONDS
    catalog.listing_open(listing=listing)
    # A hash past half of its time gets all of it again; one with more left keeps its clock.
    redis.expire(h, TTL_SECONDS // 2 + 100)
    assert post(token, body(listing, 2), "a-2")[0] == 201
    assert TTL_SECONDS // 2 < redis.ttl(h) <= TTL_SECONDS // 2 + 100
    redis.expire(h, TTL_SECONDS // 2 - 100)
    assert post(token, body(listing, 3), "a-3")[0] == 201
    assert TTL_SECONDS - 60 < redis.ttl(h) <= TTL_SECONDS


def test_a_retry_with_other_signals_of_the_same_number_reads_none_of_the_remembered_ones(merchant, listing):
    from types import SimpleNamespace

    from apps.fraud.hotpath import count_attempt

    req = SimpleNamespace(buyer_external_id="b-1")
    device = [("ip", "1.2.3.4"), ("dev", "d1"), ("addr", "a1")]
    phone = [("ip", "1.2.3.4"), ("phone", "13900000001"), ("addr", "a1")]  # as many, others
    for _ in range(3):  # counted thrice under other keys: the numbers are not the first ones
        count_attempt(listing, req, f"other-{_}", device)
    assert count_attempt(listing, req, "k", device) == (
        False,
        {"ip.l": 4, "dev.l": 4, "addr.l": 4, "dev.b": 1, "addr.b": 1, "early": 0},
    )
    assert count_attempt(listing, req, "k", device)[0] is True  # the same signals: the same numbers
    assert count_attempt(listing, req, "k", device)[1]["dev.l"] == 4
    assert count_attempt(listing, req, "k", phone) == (True, {"early": 0})


def test_redis_gone_lets_the_order_through_and_says_so(merchant, token, listing, monkeypatch):
    from apps.orders.placement import service

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis is gone")

    # The round trip of the guard and the gate fails: the rules cannot count (the order says so),
    # and the gate is asked again on its own (here it answers; were it gone, the database decides).
    monkeypatch.setattr(service, "run_together", down)
    status, order = post(token, body(listing, 1, user_agent="curl/8.5.0"), "down-1")
    assert status == 201
    assert rules_of(order["id"]) == {"decision": "allow", "unavailable": True}
    state = gate_state(listing.pk)
    assert state is not None and state["left"] == 199 and list(state["holds"]) == [order["id"]]


def test_the_guard_and_the_gate_take_one_round_trip_and_survive_a_redis_that_forgot_its_scripts(
    merchant, token, listing, monkeypatch
):
    from redis.connection import AbstractConnection as Connection  # TCP and Unix sockets alike

    from apps.catalog.selectors import listing_info
    from apps.core.redis import get_client
    from apps.orders.placement import service
    from apps.orders.placement.request import parse_order_request

    sent: list[int] = []
    real_send = Connection.send_packed_command
    this_thread = threading.current_thread()

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        if threading.current_thread() is this_thread:  # not the warm order's pushes, sent meanwhile
            sent.append(1)
        return real_send(self, command, check_health)

    info = listing_info(listing.pk)
    assert info is not None
    assert post(token, body(listing, 1), "warm")[0] == 201  # scripts loaded, gate built, rules cached
    monkeypatch.setattr(Connection, "send_packed_command", counting)
    req = parse_order_request(body(listing, 2))
    verdict, first = service._guard_with_gate(info, req, "p-one-trip", "api", buyer="b:buyer-2", remember=True)
    assert len(sent) == 1  # one write to Redis for both scripts (and one read of both replies)
    assert verdict.rules["decision"] == "allow" and verdict.rules["metrics"]["dev.l"] == 1
    assert first is not None and first.status == "ok" and not first.replay and first.left == 198
    # A Redis that restarted knows no script: both are loaded again, in that same trip's place.
    monkeypatch.setattr(Connection, "send_packed_command", real_send)
    get_client().script_flush()
    gate_calls: list[str] = []
    reserve = service.gate.reserve_call

    def spying(*args: Any, **kwargs: Any) -> Any:
        gate_calls.append("reserve")
        return reserve(*args, **kwargs)

    monkeypatch.setattr(service.gate, "reserve_call", spying)
    monkeypatch.setattr(service.gate, "gate_reserve", lambda *a, **k: pytest.fail("the gate was asked a second time"))
    status, order = post(token, body(listing, 3), "after-flush")
    assert status == 201 and rules_of(order["id"])["decision"] == "allow"
    assert rules_of(order["id"])["metrics"]["dev.l"] == 1
    assert gate_calls == ["reserve"]
    state = gate_state(listing.pk)
    assert state is not None and state["left"] == 197 and order["id"] in state["holds"]


def test_a_risk_script_error_lets_the_order_through_and_the_gate_still_holds(merchant, token, listing):
    from apps.core.redis import get_client
    from apps.fraud.hotpath import risk_key

    # A counters key of the wrong type: check.lua fails (WRONGTYPE) in the trip the gate's
    # reserve shares; the rules say they could not count, the gate's answer stands.
    get_client().set(risk_key(listing.session_id, listing.pk), "not a hash")
    status, order = post(token, body(listing, 1, user_agent="curl/8.5.0"), "wrongtype-1")
    assert status == 201
    assert rules_of(order["id"]) == {"decision": "allow", "unavailable": True}
    state = gate_state(listing.pk)
    assert state is not None and state["left"] == 199 and list(state["holds"]) == [order["id"]]


def test_a_guard_that_fails_unexpectedly_gives_the_units_back(merchant, token, listing, monkeypatch):
    from apps.fraud import hotpath
    from apps.orders.placement.request import parse_order_request
    from apps.orders.placement.service import order_place

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the rules")

    monkeypatch.setattr(hotpath, "judge_attempt", broken)
    with pytest.raises(RuntimeError):
        order_place(req=parse_order_request(body(listing, 1)), merchant_id=merchant.pk, idempotency_key="bug-1")
    state = gate_state(listing.pk)
    assert state is not None and state["left"] == 200 and state["holds"] == {}
    assert Order.objects.count() == 0


def test_the_storefront_sets_and_reads_the_device_cookie_and_its_buyer_sees_a_plain_refusal(merchant):
    from django.test import Client

    from apps.orders.storefront_client import DEVICE_COOKIE

    from ..orders.test_order_signals import _buy

    listing = make_listing(merchant, quota=10, limit=5)
    browser = Client(HTTP_USER_AGENT=APP_UA)
    ok = _buy(browser, listing, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert ok.status_code == 303
    signals = OrderSignals.objects.get()
    assert signals.device_id == browser.cookies[DEVICE_COOKIE].value  # the cookie the page set, sent back
    assert signals.ip == "203.0.113.9"  # no trusted proxy: X-Forwarded-For ignored
    bot = Client(HTTP_USER_AGENT="python-requests/2.32.3")
    refused = _buy(bot, listing, REMOTE_ADDR="198.51.100.7")
    assert refused.status_code == 403
    assert "这笔订单未能受理" in refused.content.decode()  # the storefront speaks Chinese by default
    assert "script_client" not in refused.content.decode()  # the reasons stay with the merchant
    assert Order.objects.count() == 1


def test_on_a_listing_seen_sold_out_the_gate_answers_first_and_a_block_gives_the_unit_back(
    merchant, token, monkeypatch
):
    from apps.orders.placement import service
    from apps.orders.services.transitions import order_cancel

    monkeypatch.setattr(service, "SOLD_OUT_HINT_S", 60.0)  # the hint outlives the test's steps
    listing = make_listing(merchant, quota=1, limit=1)
    status, order = post(token, body(listing, 1), "last-unit")
    assert status == 201
    assert post(token, body(listing, 2), "late")[1]["code"] == "sold_out"  # the gate's hint is set now
    # A script on the sold-out listing: the gate answers (409) before the guard counts anything.
    status, answer = post(token, body(listing, 3, user_agent="curl/8.5.0"), "bot-1")
    assert (status, answer["code"]) == (409, "sold_out")
    assert RiskAssessment.objects.count() == 0
    # The unit comes back: the gate holds it for the script, the guard refuses, the unit goes back.
    order_cancel(order=Order.objects.get(public_id=order["id"]), actor="buyer", reason="changed mind", by_buyer=True)
    status, answer = post(token, body(listing, 4, user_agent="curl/8.5.0"), "bot-2")
    assert (status, answer["code"]) == (403, "risk_blocked")
    state = gate_state(listing.pk)
    assert state is not None and state["left"] == 1 and state["holds"] == {}
    assert post(token, body(listing, 5), "fan")[0] == 201  # the fan gets it


# Every counter a rule can read, with a threshold of 2 so the third attempt fires it: what the
# three attempts share (the rest differs per attempt), and the rule.
COUNTERS = [
    ("device_velocity", {"buyer": "same", "device_id": "d-1"}),
    ("phone_velocity", {"buyer": "same", "phone": "13911112222"}),
    ("address_velocity", {"buyer": "same", "detail": "文三路100号3栋1202室"}),
    ("ip_velocity", {"ip": "112.10.36.21"}),
    ("ip24_velocity", {"ip24": "112.10.36"}),
    ("device_shared", {"device_id": "d-1"}),
    ("phone_shared", {"phone": "13911112222"}),
    ("address_shared", {"detail": "文三路100号3栋1202室"}),
    ("drop_point_shared", {"detail": "文三路100号3栋1202室"}),
]


@pytest.mark.parametrize(("code", "shared"), COUNTERS, ids=[c[0] for c in COUNTERS])
def test_each_counter_fires_its_rule_above_its_threshold(merchant, token, code, shared):
    listing = make_listing(merchant, quota=50, limit=5)
    risk_rules.ensure_rules(merchant.pk)
    RiskRule.objects.filter(merchant=merchant, code=code).update(
        threshold=2, mode=RuleMode.ON, action=RuleAction.REVIEW
    )
    risk_rules.forget(merchant.pk)
    decisions = []
    for n in range(1, 4):
        b = body(listing, n, buyer="same" if shared.get("buyer") else None)
        if "device_id" in shared:
            b["client"]["device_id"] = shared["device_id"]
        if "ip" in shared:
            b["client"]["ip"] = shared["ip"]
        if "ip24" in shared:
            b["client"]["ip"] = f"{shared['ip24']}.{n + 10}"
        if "phone" in shared:
            b["shipping_address"]["phone"] = b["buyer"]["phone"] = shared["phone"]
        if "detail" in shared:
            b["shipping_address"]["detail"] = shared["detail"]
        status, order = post(token, b, f"{code}-{n}")
        assert status == 201, order
        stored = rules_of(order["id"])
        decisions.append((stored["decision"], [hit[0] for hit in stored["hits"]]))
    assert decisions[:2] == [("allow", [])] * 2
    assert decisions[2][0] == "review" and code in decisions[2][1], decisions


def test_a_retry_of_a_key_with_other_signals_is_the_same_order_not_an_error(merchant, token, listing):
    first = body(listing, 1)
    del first["client"]["device_id"]
    status, order = post(token, first, "retry-key")
    assert status == 201
    again = body(listing, 1)  # the same order, now with a device id (the tool learned it)
    status, answer = post(token, again, "retry-key")
    assert (status, answer["id"]) == (200, order["id"])
