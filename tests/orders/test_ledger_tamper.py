"""The ledger as evidence (DESIGN.md invariant 9): what someone with write access to the database
(but not the ledger key, nor the checkpoint storage) can try, and how each attempt is caught; and
the buyer's proof, checked by the stdlib verifier."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from apps.orders.apps import ensure_schedules
from apps.orders.models import LedgerHead, Order, OrderEvent, OrderStatus
from apps.orders.placement.links import status_path, status_token
from apps.orders.services.checkpoints import (
    checkpoint_append,
    checkpoint_covering,
    checkpoint_entries,
    checkpoint_latest,
    checkpoint_path,
    checkpoint_sign,
)
from apps.orders.services.ledger import chain_hash, content_body, ledger_checkpoint, ledger_verify
from apps.orders.services.transitions import order_transition

from .. import servers
from ..factories import make_listing, order_body

pytestmark = pytest.mark.django_db(transaction=True)


def _place(api, listing, n):  # type: ignore[no-untyped-def]
    ids = []
    for i in range(n):
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"t{i}"), format="json")
        assert r.status_code == 201, r.content
        ids.append(r.json()["id"])
    return ids


def _pay(public_id: str) -> None:
    order_transition(public_id=public_id, to=OrderStatus.PAID, actor="payment", reason="paid: test")


def _problems(merchant_id: int | None = None) -> list[str]:
    return [str(p) for p in ledger_verify(merchant_id=merchant_id)]


def _sql(statement: str, params: list) -> None:  # type: ignore[type-arg]
    with connection.cursor() as cur:
        cur.execute(statement, params)


@pytest.fixture
def sale(api, merchant):  # type: ignore[no-untyped-def]
    """Two orders placed and paid: events 1-2 placements, 3-4 payments; the chain verifies."""
    listing = make_listing(merchant, quota=10)
    ids = _place(api, listing, 2)
    for oid in ids:
        _pay(oid)
    assert _problems() == []
    return ids


# --- attacks on the database -----------------------------------------------------------------------
def test_a_deleted_head_row_is_reported(sale, merchant):
    _sql("DELETE FROM orders_ledgerhead WHERE merchant_id = %s", [merchant.pk])
    problems = _problems()
    assert any("no ledger head row" in p for p in problems), problems
    r = subprocess.run(
        [sys.executable, "manage.py", "verify_ledger"],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env=servers.child_env(),
    )
    assert r.returncode == 1 and "no ledger head row" in r.stderr, r.stdout + r.stderr


def test_truncating_the_tail_and_winding_the_head_back_is_caught_by_the_checkpoint(sale, merchant):
    run = ledger_checkpoint()
    assert [line["seq"] for line in run.written] == [4] and run.problems == []
    # The attacker deletes the last payment, puts its order back to unpaid and winds the head back
    # to event 3: the chain, the head and every order's status agree with each other again.
    last = OrderEvent.objects.get(merchant=merchant, seq=4)
    third = OrderEvent.objects.get(merchant=merchant, seq=3)
    _sql("DELETE FROM orders_orderevent WHERE id = %s", [last.pk])
    _sql("UPDATE orders_order SET status = %s WHERE id = %s", [OrderStatus.PENDING_PAYMENT, last.order_id])
    _sql("UPDATE orders_ledgerhead SET seq = 3, last_hash = %s WHERE merchant_id = %s", [third.hash, merchant.pk])
    problems = _problems()
    assert len(problems) == 1, problems
    assert "the chain ends at seq 3" in problems[0] and "covers seq 4" in problems[0]
    assert "events after seq 3 were deleted" in problems[0]
    # ... and the next checkpoint run refuses to sign the shorter chain.
    again = ledger_checkpoint()
    assert again.written == [] and "behind the signed checkpoint" in str(again.problems[0])


def _public_digest(ev: OrderEvent) -> str:
    """The content digest as it was before the ledger was keyed: plain sha256 anyone can compute."""
    body = content_body(
        merchant_id=ev.merchant_id,
        order_public_id=ev.order.public_id,
        from_status=ev.from_status,
        to_status=ev.to_status,
        actor=ev.actor,
        reason=ev.reason,
        created_at=ev.created_at,
    )
    return hashlib.sha256(body).hexdigest()


def test_recomputing_the_whole_chain_without_the_key_is_reported(sale, merchant):
    first = OrderEvent.objects.get(merchant=merchant, seq=1)
    OrderEvent.objects.filter(pk=first.pk).update(reason="placed via a forged channel")
    prev = "0" * 64
    for ev in OrderEvent.objects.filter(merchant=merchant).select_related("order").order_by("seq"):
        h = chain_hash(prev_hash=prev, seq=ev.seq, digest=_public_digest(ev))
        OrderEvent.objects.filter(pk=ev.pk).update(prev_hash=prev, hash=h)
        prev = h
    LedgerHead.objects.filter(pk=merchant.pk).update(last_hash=prev)
    problems = _problems()
    assert len(problems) == 1, problems
    assert "seq 1" in problems[0] and "rehashed without the ledger key" in problems[0]
    # Nothing signs the forged chain either.
    run = ledger_checkpoint()
    assert run.written == [] and "seq 1" in str(run.problems[0])


def test_an_order_status_edited_in_sql_is_reported(sale, merchant):
    victim = Order.objects.get(public_id=sale[0])
    _sql("UPDATE orders_order SET status = %s WHERE id = %s", [OrderStatus.SHIPPED, victim.pk])
    problems = _problems()
    assert problems == [
        f"merchant {merchant.pk}: order {victim.public_id} is 'shipped' but its last ledger event says 'paid'"
    ]


def test_an_order_with_no_event_is_reported(sale, merchant):
    victim = Order.objects.get(public_id=sale[1])
    OrderEvent.objects.filter(order=victim).delete()
    problems = _problems()
    assert any(f"order {victim.public_id} is 'paid' but has no ledger event" in p for p in problems), problems


def test_a_forged_or_altered_checkpoint_line_is_reported(sale, merchant):
    ledger_checkpoint()
    path = checkpoint_path(merchant.pk)
    genuine = json.loads(path.read_text().splitlines()[0])
    # Forged: a plausible line signed with a guess (the published hash of its fields).
    forged = {**genuine, "seq": 2, "head_hash": OrderEvent.objects.get(merchant=merchant, seq=2).hash}
    forged["sig"] = hashlib.sha256(json.dumps(forged, sort_keys=True).encode()).hexdigest()
    # Altered: the genuine line with a later time.
    altered = {**genuine, "at": "2099-01-01T00:00:00.000000+00:00"}
    with path.open("a") as f:
        f.write(json.dumps(forged) + "\n" + json.dumps(altered) + "\n")
    problems = _problems()
    assert [p for p in problems if "signature invalid" in p] == [
        f"merchant {merchant.pk}: checkpoint {path} line 2: signature invalid (forged or altered checkpoint)",
        f"merchant {merchant.pk}: checkpoint {path} line 3: signature invalid (forged or altered checkpoint)",
    ]
    assert len(problems) == 2
    assert checkpoint_latest(merchant.pk) == genuine  # unsigned lines are never used


def test_a_checkpoint_for_a_merchant_whose_ledger_is_gone_is_reported(sale, merchant):
    ledger_checkpoint()
    _sql("DELETE FROM orders_orderevent WHERE merchant_id = %s", [merchant.pk])
    _sql("DELETE FROM orders_ledgerhead WHERE merchant_id = %s", [merchant.pk])
    problems = _problems()
    assert any("no ledger head row" in p for p in problems)
    assert any("the chain ends at seq 0" in p and "covers seq 4" in p for p in problems), problems


# --- checkpoints ---------------------------------------------------------------------------------
def test_checkpoint_signs_only_chains_that_moved(sale, merchant, other_api, other_merchant):
    first = ledger_checkpoint()
    assert [(x["merchant"], x["seq"]) for x in first.written] == [(merchant.pk, 4)]
    assert ledger_checkpoint().written == []
    _place(other_api, make_listing(other_merchant, quota=3), 1)
    assert [(x["merchant"], x["seq"]) for x in ledger_checkpoint().written] == [(other_merchant.pk, 1)]
    lines = [e.line for e in checkpoint_entries(merchant.pk)]
    assert len(lines) == 1 and set(lines[0]) == {"merchant", "seq", "head_hash", "at", "sig"}
    assert lines[0]["head_hash"] == LedgerHead.objects.get(pk=merchant.pk).last_hash
    assert _problems() == []


def test_checkpoint_refuses_to_run_inside_a_transaction(sale):
    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        ledger_checkpoint()


def test_the_checkpoint_is_scheduled_every_minute():
    from django_q.models import Schedule

    ensure_schedules(sender=None)
    s = Schedule.objects.get(name="ledger checkpoint")
    assert (s.func, s.schedule_type, s.minutes) == ("apps.orders.tasks.checkpoint_ledger", Schedule.MINUTES, 1)


def test_the_checkpoint_command_prints_what_it_signed(sale, merchant):
    r = subprocess.run(
        [sys.executable, "manage.py", "ledger_checkpoint"],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env=servers.child_env(),
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["seq"] == 4 and "1 checkpoint(s) written" in r.stdout
    assert checkpoint_latest(merchant.pk)["seq"] == 4


@pytest.mark.django_db(transaction=False)
def test_checkpoint_covering_finds_the_first_signed_line_at_or_after_a_seq():
    seqs = [3, 4, 9, 10, 11, 40, 41, 100]
    for s in seqs:
        checkpoint_append(checkpoint_sign(merchant=7, seq=s, head_hash="a" * 64, at=f"t{s}"))
    with checkpoint_path(7).open("a") as f:  # a torn line at the end
        f.write('{"merchant": 7, "seq": 1')
    checkpoint_append(checkpoint_sign(merchant=7, seq=120, head_hash="b" * 64, at="t120"))
    seqs.append(120)
    for target in range(0, 125):
        expected = next((s for s in seqs if s >= target), None)
        found = checkpoint_covering(7, target)
        assert (found and found["seq"]) == expected, target
    assert checkpoint_latest(7)["seq"] == 120


# --- the buyer's proof ---------------------------------------------------------------------------
def _proof(client: Client, public_id: str, tmp_path: Path, name: str = "proof.json") -> tuple[dict, Path]:
    r = client.get(f"/o/{public_id}/proof.json", {"t": status_token(public_id)})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/json")
    assert "attachment" in r["Content-Disposition"]
    path = tmp_path / name
    path.write_bytes(r.content)
    return json.loads(r.content), path


def _verify(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The verifier as a buyer runs it: the file alone, no Django, no site-packages (-I -S)."""
    script = Path(settings.BASE_DIR) / "livecommerce" / "verify_proof.py"
    return subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(path), *args],
        capture_output=True,
        text=True,
        env=env or {},
    )


def test_the_proof_verifies_with_the_stdlib_verifier_and_fails_after_tampering(sale, merchant, tmp_path):
    client = Client()
    oid = sale[0]
    ledger_checkpoint()
    proof, path = _proof(client, oid, tmp_path)
    assert proof["status"] == "checkpointed" and [e["to_status"] for e in proof["events"]] == [
        "pending_payment",
        "paid",
    ]
    ok = _verify(path)
    assert ok.returncode == 0, ok.stderr
    assert "2 of 2 events verified" in ok.stdout
    as_module = subprocess.run(
        [sys.executable, "-m", "livecommerce.verify_proof", str(path)],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert as_module.returncode == 0, as_module.stderr
    # The operator, with the key, also checks the signatures and each event's content.
    keyed = _verify(path, "--key-env", "LK", env={"LK": settings.LEDGER_KEY})
    assert keyed.returncode == 0 and "verified with the ledger key" in keyed.stdout, keyed.stderr

    # A proof edited after download: a digest changed breaks the links ...
    edited = json.loads(path.read_text())
    edited["segments"][0]["links"][0]["digest"] = "0" * 64
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    bad = _verify(tmp_path / "edited.json")
    assert bad.returncode == 1 and "do not reach the checkpoint" in bad.stderr
    # ... and a changed status is caught by whoever holds the key.
    relabelled = json.loads(path.read_text())
    relabelled["events"][1]["to_status"] = "cancelled"
    (tmp_path / "relabelled.json").write_text(json.dumps(relabelled))
    bad = _verify(tmp_path / "relabelled.json", "--key-env", "LK", env={"LK": settings.LEDGER_KEY})
    assert bad.returncode == 1 and "content does not match its keyed digest" in bad.stderr

    # The database edited after the checkpoint: the server refuses to publish a proof (it would
    # otherwise hand out the keyed digest of the edited content), and says why.
    paid = OrderEvent.objects.get(order__public_id=oid, to_status=OrderStatus.PAID)
    OrderEvent.objects.filter(pk=paid.pk).update(reason="paid: someone else's money")
    r = client.get(f"/o/{oid}/proof.json", {"t": status_token(oid)})
    assert r.status_code == 409 and r.json()["code"] == "ledger_unverifiable", r.content
    assert "digest" not in r.content.decode()


def test_the_proof_is_no_oracle_for_forged_events(api, merchant):
    """An intruder with write access to the database and one status link used to get the keyed
    digest of any content they wrote into an event inside their proof's range, put the event
    back, and append the forgery at the tail with a valid link: verify_ledger passed and the next
    checkpoint signed it. The proof now recomputes every link before it publishes a digest."""
    listing = make_listing(merchant, quota=10)
    ids = []
    for i in range(2):
        r = api.post("/api/v1/orders", order_body(listing.pk, buyer=f"forge-{i}"), format="json")
        assert r.status_code == 201
        ids.append(r.json()["id"])
    for oid in ids:
        order_transition(public_id=oid, to=OrderStatus.PAID, actor="payment", reason="paid: test")
    assert ledger_checkpoint().written
    mine, victim = ids
    target = OrderEvent.objects.get(merchant_id=merchant.pk, seq=4)
    saved = {f: getattr(target, f) for f in ("order_id", "from_status", "to_status", "actor", "reason")}
    OrderEvent.objects.filter(pk=target.pk).update(
        order_id=Order.objects.get(public_id=victim).pk, from_status="paid", to_status="refunded", reason="refund sent"
    )
    r = Client().get(f"/o/{mine}/proof.json", {"t": status_token(mine)})
    assert r.status_code == 409 and r.json()["code"] == "ledger_unverifiable"
    OrderEvent.objects.filter(pk=target.pk).update(**saved)
    assert ledger_verify() == []
    assert Client().get(f"/o/{mine}/proof.json", {"t": status_token(mine)}).status_code == 200


def test_a_history_the_state_machine_does_not_allow_is_reported(api, merchant):
    listing = make_listing(merchant, quota=5)
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="history"), format="json")
    oid = r.json()["id"]
    order_transition(public_id=oid, to=OrderStatus.PAID, actor="payment", reason="paid")
    assert ledger_verify() == []
    paid = OrderEvent.objects.get(order__public_id=oid, to_status=OrderStatus.PAID)
    # A step that skips the machine (pending -> refunded), written with a valid link by someone
    # holding the key, is still an impossible history.
    OrderEvent.objects.filter(pk=paid.pk).update(to_status=OrderStatus.REFUNDED)
    Order.objects.filter(public_id=oid).update(status=OrderStatus.REFUNDED)
    problems = [str(p) for p in ledger_verify()]
    assert any("not a step the state machine allows" in p for p in problems), problems


def test_an_order_moved_to_another_merchant_is_reported(api, merchant, other_merchant):
    listing = make_listing(merchant, quota=5)
    oid = api.post("/api/v1/orders", order_body(listing.pk, buyer="mover"), format="json").json()["id"]
    assert ledger_verify() == []
    Order.objects.filter(public_id=oid).update(merchant=other_merchant)
    problems = [str(p) for p in ledger_verify()]
    assert any(f"event of order {oid} is in merchant {merchant.pk}'s chain" in p for p in problems), problems


def test_events_newer_than_the_checkpoint_are_not_yet_checkpointed(sale, merchant, tmp_path):
    client = Client()
    oid = sale[1]
    page = client.get(status_path(Order.objects.get(public_id=oid)))
    assert page.status_code == 200
    html = page.content.decode()
    assert "尚未存证" in html and f"/o/{oid}/proof.json?t=" in html
    proof, path = _proof(client, oid, tmp_path)
    assert proof["status"] == "not yet checkpointed" and proof["segments"] == []
    r = _verify(path)
    assert r.returncode == 2 and "not yet checkpointed" in r.stdout, r.stdout + r.stderr

    ledger_checkpoint()
    order_transition(public_id=oid, to=OrderStatus.CONFIRMED, actor="test", reason="confirmed")
    proof, path = _proof(client, oid, tmp_path, "later.json")
    assert [e["checkpointed"] for e in proof["events"]] == [True, True, False]
    assert _verify(path).returncode == 2
    ledger_checkpoint()
    proof, path = _proof(client, oid, tmp_path, "sealed.json")
    assert proof["status"] == "checkpointed" and len(proof["segments"]) == 2
    r = _verify(path)
    assert r.returncode == 0 and "3 of 3 events verified" in r.stdout, r.stderr
    html = client.get(status_path(Order.objects.get(public_id=oid))).content.decode()
    assert "尚未存证" not in html and "已存证" in html


def test_the_status_page_shows_the_orders_events_with_their_hashes(sale, merchant):
    order = Order.objects.get(public_id=sale[0])
    html = Client().get(status_path(order)).content.decode()
    for ev in OrderEvent.objects.filter(order=order):
        assert ev.hash[:12] in html
    assert "新订单 → 待支付" in html and "待支付 → 已支付" in html


def test_the_proof_needs_the_links_token(sale):
    client = Client()
    assert client.get(f"/o/{sale[0]}/proof.json").status_code == 403
    assert client.get(f"/o/{sale[0]}/proof.json", {"t": status_token(sale[1])}).status_code == 403
