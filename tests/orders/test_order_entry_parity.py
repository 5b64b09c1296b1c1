"""One table of inputs run through every entry point of ``POST /api/v1/orders`` — the DRF view
(the documented endpoint, through Django's stack), the ASGI fast path's worker thread, and its
event loop (``placement/eventloop.py``, which answers refusals with no thread and no database) —
which must answer every one identically: status and body (an accepted order's own id, link and
times aside), and the OpenAPI request schema must be the one input definition the validator walks
(``ORDER_INPUT``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.catalog import services as catalog
from apps.fraud.models import RiskAssessment
from apps.merchants import services as merchants
from apps.merchants.models import ApiToken
from apps.merchants.tokens import hash_token
from apps.orders.models import Order
from apps.orders.placement.gate.scripts import gate_state
from apps.orders.placement.request import ORDER_INPUT, order_input_schema

from ..factories import make_listing, make_token, order_body
from .test_bad_input import _drf, _fast

pytestmark = pytest.mark.django_db(transaction=True)

VOLATILE = ("id", "status_url", "pay_by", "created_at", "updated_at")


def _stable(body: dict) -> dict:
    """An answer without what differs between two orders placed a moment apart."""
    return {k: v for k, v in body.items() if k not in VOLATILE} if "id" in body else body


def _with(path: str, value: Any) -> Callable[[dict], dict]:
    def change(body: dict) -> dict:
        out = json.loads(json.dumps(body))
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        if value is _DROP:
            node.pop(leaf, None)
        else:
            node[leaf] = value
        return out

    return change


_DROP = object()


def _signals(body: dict) -> dict:
    out = _with("client", {"ip": "2001:DB8::7", "device_id": "dev-7", "user_agent": "Mozilla/5.0 aweme/29"})(body)
    return _with("buyer.registered_at", "2024-03-02T10:15:00+08:00")(out)


REVOKED = "<a revoked token>"

# (case, how to make the body from a valid one, headers, the listing's state, expected status, code)
CASES: list[tuple[str, Callable[[dict], Any], dict, str, int, str | None]] = [
    ("accepted", lambda b: b, {}, "open", 201, None),
    ("accepted, quantity as a digit string", _with("quantity", "1"), {}, "open", 201, None),
    ("accepted, phone written with +86 and dashes", _with("buyer.phone", "+86 138-0000-1001"), {}, "open", 201, None),
    ("sold out", lambda b: b, {}, "sold_out", 409, "sold_out"),
    ("over the per-buyer limit", _with("quantity", 4), {}, "open", 409, "over_buyer_limit"),
    ("listing not open", lambda b: b, {}, "closed", 409, "listing_closed"),
    ("no such listing", _with("listing", 999_999_999), {}, "open", 404, "listing_not_found"),
    ("another merchant's listing", lambda b: b, {}, "foreign", 404, "listing_not_found"),
    ("quantity zero", _with("quantity", 0), {}, "open", 400, "invalid"),
    ("quantity over the maximum", _with("quantity", 1001), {}, "open", 400, "invalid"),
    ("quantity a float", _with("quantity", 1.5), {}, "open", 400, "invalid"),
    ("quantity a boolean", _with("quantity", True), {}, "open", 400, "invalid"),
    ("listing missing", _with("listing", _DROP), {}, "open", 400, "invalid"),
    ("buyer not an object", _with("buyer", "me"), {}, "open", 400, "invalid"),
    ("buyer id blank", _with("buyer.external_id", "   "), {}, "open", 400, "invalid"),
    ("buyer id too long", _with("buyer.external_id", "x" * 101), {}, "open", 400, "invalid"),
    ("buyer phone not a phone", _with("buyer.phone", "call me"), {}, "open", 400, "invalid"),
    ("address missing", _with("shipping_address", _DROP), {}, "open", 400, "invalid"),
    ("address detail too long", _with("shipping_address.detail", "路" * 301), {}, "open", 400, "invalid"),
    ("address city a number", _with("shipping_address.city", 5), {}, "open", 400, "invalid"),
    ("null character", _with("buyer.name", "a\x00b"), {}, "open", 400, "invalid"),
    ("body a list", lambda b: [b], {}, "open", 400, "invalid"),
    # the buyer's device, relayed by the tool (issue 11): risk signals, validated alike
    ("accepted, with client and registered_at", lambda b: _signals(b), {}, "open", 201, None),
    ("accepted, client null", _with("client", None), {}, "open", 201, None),
    ("accepted, client empty", _with("client", {}), {}, "open", 201, None),
    ("client not an object", _with("client", "1.2.3.4"), {}, "open", 400, "invalid"),
    ("client ip junk", _with("client", {"ip": "1.2.3.999"}), {}, "open", 400, "invalid"),
    ("client with an unknown key", _with("client", {"ip": "1.2.3.4", "mac": "x"}), {}, "open", 400, "invalid"),
    ("client device id with a space", _with("client", {"device_id": "a b"}), {}, "open", 400, "invalid"),
    ("client user agent with a newline", _with("client", {"user_agent": "UA\nX: y"}), {}, "open", 400, "invalid"),
    ("registered_at in the future", _with("buyer.registered_at", "2099-01-01T00:00:00Z"), {}, "open", 400, "invalid"),
    ("registered_at before 2000", _with("buyer.registered_at", "1999-12-31T23:00:00Z"), {}, "open", 400, "invalid"),
    ("registered_at not a date", _with("buyer.registered_at", "yesterday"), {}, "open", 400, "invalid"),
    ("bad Idempotency-Key", lambda b: b, {"Idempotency-Key": "sp ace"}, "open", 400, "invalid_idempotency_key"),
    # the risk rules (a script client is blocked by default), the token, the bytes
    ("risk blocked", _with("client", {"user_agent": "python-requests/2.31"}), {}, "open", 403, "risk_blocked"),
    ("no token", lambda b: b, {"Authorization": ""}, "open", 401, "not_authenticated"),
    ("not a token header", lambda b: b, {"Authorization": "Basic abc"}, "open", 401, "authentication_failed"),
    ("bad token", lambda b: b, {"Authorization": "Token nope"}, "open", 401, "authentication_failed"),
    ("revoked token", lambda b: b, {"Authorization": REVOKED}, "open", 401, "authentication_failed"),
    ("bad JSON", lambda b: b"{broken", {}, "open", 400, "malformed_request"),
    ("wrong content type", lambda b: b, {"Content-Type": "text/plain"}, "open", 415, "unsupported_media_type"),
    ("too large", lambda b: {**b, "pad": "x" * 70_000}, {}, "open", 413, "payload_too_large"),
    # answers in the client's language, on the loop as in a thread
    ("invalid, in Chinese", _with("quantity", 0), {"Accept-Language": "zh-CN"}, "open", 400, "invalid"),
    ("sold out, in Chinese", lambda b: b, {"Accept-Language": "zh-CN"}, "sold_out", 409, "sold_out"),
    (
        "wrong content type, in Chinese",
        lambda b: b,
        {"Accept-Language": "zh-CN", "Content-Type": "text/csv"},
        "open",
        415,
        "unsupported_media_type",
    ),
]

# What the event loop hands to a worker thread, by case (every other case is answered on the loop:
# no hop, at most a refusal's side effect in the pool).
PLACED_BY = "run_effects" if "postgresql" in django_settings.DATABASES["default"]["ENGINE"] else "_handle_parsed"
HANDED_ON = {"no such listing": "_handle_parsed", "bad token": "_handle", "revoked token": "_handle"}
SIDE_EFFECTS = {"listing not open", "risk blocked"}


@pytest.fixture
def world(merchant, other_merchant, token):  # type: ignore[no-untyped-def]
    def listing(state: str) -> int:
        if state == "foreign":
            return make_listing(other_merchant, quota=5).pk
        made = make_listing(merchant, quota=1 if state == "sold_out" else 10, on_hand=10, limit=3, open_=False)
        if state == "closed":
            return made.pk  # scheduled, with no start time: not open
        catalog.listing_open(listing=made)
        if state == "sold_out":  # somebody else bought the only unit
            first = _drf(token, json.dumps(order_body(made.pk, buyer="early-bird")).encode())
            assert first[0] == 201, first
        return made.pk

    return listing


@pytest.mark.parametrize(("case", "change", "headers", "state", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_every_entry_point_answers_alike(merchant, token, world, case, change, headers, state, status, code):
    listing_id = world(state)
    if headers.get("Authorization") == REVOKED:
        revoked = make_token(merchant, name="old")
        _drf(revoked, b"{}")  # cached in this process, then revoked
        merchants.api_token_revoke(token=ApiToken.objects.get(key_hash=hash_token(revoked)))
        headers = {**headers, "Authorization": f"Token {revoked}"}
    before = Order.objects.count()
    answers, hops = [], []
    # The thread path first: it fills this process's token, listing and rules caches, so the
    # event loop has what it needs to answer without a worker thread.
    for i, (name, send) in enumerate((("thread", _thread), ("loop", _loop), ("drf", _drf))):
        # Attempts on a closed listing are counted per buyer (a second early one is blocked).
        made = change(order_body(listing_id, buyer=f"parity-buyer-{i}" if state == "closed" else "parity-buyer"))
        raw = made if isinstance(made, bytes) else json.dumps(made, ensure_ascii=False).encode()
        hdrs = {"Idempotency-Key": f"parity-{i}", **headers}
        got_status, got_body, _ = send(token, raw, hdrs, hops) if name == "loop" else send(token, raw, hdrs)
        answers.append((got_status, _stable(got_body)))
    assert answers[0] == answers[1] == answers[2], {"case": case, "answers": answers}
    fs, fb = answers[0]
    assert fs == status, (case, fb)
    if code is not None:
        assert fb["code"] == code, (case, fb)
    else:
        assert fb["status"] == "pending_payment"
    if status >= 400:
        assert Order.objects.count() == before, case  # a refusal writes nothing
    if status < 400:
        # accepted by the gate on the loop; placed from the loop on PostgreSQL (the pool runs its
        # after-commit effects), else in a thread
        assert hops == [PLACED_BY], (case, hops)
    elif case in HANDED_ON:
        assert hops == [HANDED_ON[case]], (case, hops)
    else:
        assert hops == (["_side_effect"] if case in SIDE_EFFECTS else []), (case, hops)
    if case == "risk blocked":  # every path gave the units back and recorded the attempt
        assert gate_state(listing_id)["left"] == 10
        assert RiskAssessment.objects.filter(listing_id=listing_id, decision="block").count() == 3


def _thread(token: str, body: bytes, headers: dict) -> tuple[int, dict, dict]:
    return _fast(token, body, headers, event_loop=False)


def _loop(token: str, body: bytes, headers: dict, hops: list[str]) -> tuple[int, dict, dict]:
    return _fast(token, body, headers, event_loop=True, hops=hops)


def test_a_replay_answers_alike_through_either_entry_point(merchant, token):
    listing = make_listing(merchant, quota=5, limit=2)
    raw = json.dumps(order_body(listing.pk, buyer="replayer")).encode()
    first = _fast(token, raw, {"Idempotency-Key": "same-key"})
    assert first[0] == 201
    again_fast, again_drf = (
        _fast(token, raw, {"Idempotency-Key": "same-key"}),
        _drf(token, raw, {"Idempotency-Key": "same-key"}),
    )
    assert again_fast[0] == again_drf[0] == 200
    assert {**again_fast[1], "status_url": None} == {**again_drf[1], "status_url": None}
    assert again_fast[1]["id"] == first[1]["id"]
    changed = json.dumps(order_body(listing.pk, buyer="someone-else")).encode()
    conflict = (
        _fast(token, changed, {"Idempotency-Key": "same-key"}),
        _drf(token, changed, {"Idempotency-Key": "same-key"}),
    )
    assert conflict[0][:2] == conflict[1][:2] and conflict[0][0] == 422, conflict
    assert Order.objects.count() == 1


def test_auth_and_media_type_answer_alike(merchant, token):
    listing = make_listing(merchant, quota=5)
    raw = json.dumps(order_body(listing.pk)).encode()
    for bad_token in ("nope", ""):
        f = _fast(bad_token, raw)
        d = _drf(bad_token, raw)
        assert f[:2] == d[:2] and f[0] == 401, (bad_token, f, d)
    f = _fast(token, raw, {"Content-Type": "text/plain"})
    assert f[0] == 415 and f[1]["code"] == "unsupported_media_type", f
    assert Order.objects.count() == 0


def test_the_schema_shows_the_one_input_definition(client: Client):
    served = client.get("/api/schema/?format=json").json()
    post = served["paths"]["/api/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post == json.loads(json.dumps(order_input_schema()))
    assert set(post["properties"]) == set(ORDER_INPUT)
    assert post["example"]["quantity"] == 1


def test_an_idempotency_key_with_a_trailing_newline_is_refused_alike(merchant, token):
    listing = make_listing(merchant, quota=5)
    raw = json.dumps(order_body(listing.pk)).encode()
    f = _fast(token, raw, {"Idempotency-Key": "key\n"})
    d = _drf(token, raw, {"Idempotency-Key": "key\n"})
    assert f[:2] == d[:2] and f[0] == 400 and f[1]["code"] == "invalid_idempotency_key", (f, d)
    assert Order.objects.count() == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)
_FIELDS = [
    "listing",
    "quantity",
    "buyer",
    "buyer.external_id",
    "buyer.phone",
    "buyer.registered_at",
    "shipping_address",
    "shipping_address.city",
    "client",
    "client.ip",
    "client.user_agent",
]


@pytest.fixture
def sold_out_listing(merchant, token) -> int:  # type: ignore[no-untyped-def]
    """One listing whose only unit is sold (made once per test: hypothesis's examples share it)."""
    made = make_listing(merchant, quota=1, limit=1)
    assert _drf(token, json.dumps(order_body(made.pk, buyer="early-bird")).encode())[0] == 201
    return made.pk


@given(field=st.sampled_from(_FIELDS), value=_JSON, key=st.one_of(st.none(), st.text(max_size=12)))
@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_bodies_are_answered_alike_by_the_loop_the_thread_and_the_view(
    sold_out_listing, token, field, value, key
):
    """Any value in any field of a request on a sold-out listing: the same answer from every
    entry point (the loop answers it, with the caches the thread path filled)."""
    body = order_body(sold_out_listing, buyer="fuzzed")
    body.setdefault("client", {})
    raw = json.dumps(_with(field, value)(body), ensure_ascii=False).encode()
    headers = {} if key is None or not key.isprintable() else {"Idempotency-Key": key}
    answers = [send(token, raw, headers)[:2] for send in (_thread, _loop_any, _drf)]
    assert answers[0] == answers[1] == answers[2], answers
    assert answers[0][0] < 500


def _loop_any(token: str, body: bytes, headers: dict) -> tuple[int, dict, dict]:
    return _fast(token, body, headers, event_loop=True)
