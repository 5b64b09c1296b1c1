"""Check an order's ledger proof with the Python standard library only.

    python -m livecommerce.verify_proof proof.json [--key-env LEDGER_KEY]

The proof is the JSON the buyer's status page offers ("Download proof"). For each segment it
recomputes the chain links ``sha256("{prev_hash}:{seq}:{digest}")`` from the segment's first
``prev_hash`` through every link, and checks that they are consecutive and end exactly at the
segment's checkpoint (``seq`` and ``head_hash``); then that every event of the order the proof
calls checkpointed sits in a segment with its own ``hash`` and ``prev_hash``. A buyer compares the
checkpoint lines with the ones the shop publishes (or an auditor with the checkpoint files): a
matching line proves the order's events were in the merchant's chain when it was signed, and
anything changed since no longer verifies.

What needs the ledger key (the shop's operator or an auditor it trusts, ``--key-env NAME`` reads
it from that environment variable): the checkpoints' signatures, and that each event's content
(status, time, actor, reason) is what its keyed digest says.

Exit status: 0 every event of the order is proven; 1 the proof does not verify; 2 it verifies,
but some events are not yet checkpointed (download it again after the next checkpoint).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
from typing import Any

FORMAT = "livecommerce.ledger-proof/1"
CHECKPOINT_FIELDS = ("merchant", "seq", "head_hash", "at")


class ProofError(Exception):
    pass


def chain_hash(prev_hash: str, seq: int, digest: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{seq}:{digest}".encode()).hexdigest()


def content_digest(key: bytes, merchant: int, order: str, event: dict[str, Any]) -> str:
    """As ``apps.orders.services.ledger.content_digest``: HMAC-SHA256 over canonical JSON."""
    body = json.dumps(
        [
            merchant,
            order,
            event["from_status"],
            event["to_status"],
            event["actor"],
            event["reason"],
            event["created_at"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def checkpoint_sig(key: bytes, line: dict[str, Any]) -> str:
    fields = {k: line[k] for k in CHECKPOINT_FIELDS}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _segment(proof: dict[str, Any], n: int, seg: dict[str, Any]) -> dict[int, tuple[str, str, str]]:
    """Recompute one segment; returns seq -> (prev_hash, hash, digest) for each link."""
    cp = seg["checkpoint"]
    if cp["merchant"] != proof["merchant"]:
        raise ProofError(f"segment {n}: its checkpoint is for merchant {cp['merchant']}, not {proof['merchant']}")
    links = seg["links"]
    if not links:
        raise ProofError(f"segment {n}: no links")
    h = seg["prev_hash"]
    out: dict[int, tuple[str, str, str]] = {}
    expected = links[0]["seq"]
    for link in links:
        seq, digest = link["seq"], link["digest"]
        if seq != expected:
            raise ProofError(f"segment {n}: seq {expected} is missing from the links (next is {seq})")
        prev, h = h, chain_hash(h, seq, digest)
        out[seq] = (prev, h, digest)
        expected += 1
    if links[-1]["seq"] != cp["seq"]:
        raise ProofError(f"segment {n}: the links end at seq {links[-1]['seq']}, the checkpoint is at {cp['seq']}")
    if h != cp["head_hash"]:
        raise ProofError(
            f"segment {n}: the links do not reach the checkpoint's head_hash at seq {cp['seq']} "
            f"(computed {h[:16]}…, checkpoint {cp['head_hash'][:16]}…)"
        )
    return out


def verify(proof: dict[str, Any], *, key: bytes | None = None) -> list[str]:
    """Raise ProofError when the proof does not verify; return notes (events not yet checkpointed)."""
    if not isinstance(proof, dict) or proof.get("format") != FORMAT:
        raise ProofError(f"not a {FORMAT} proof")
    try:
        if not proof["events"]:
            raise ProofError("the proof has no events")
        chain: dict[int, tuple[str, str, str]] = {}
        for n, seg in enumerate(proof["segments"], start=1):
            if key is not None and not hmac.compare_digest(
                checkpoint_sig(key, seg["checkpoint"]), seg["checkpoint"]["sig"]
            ):
                raise ProofError(f"segment {n}: the checkpoint's signature is invalid")
            chain.update(_segment(proof, n, seg))
        notes = []
        for ev in proof["events"]:
            seq = ev["seq"]
            if not ev["checkpointed"]:
                notes.append(f"event seq {seq} ({ev['to_status']}) is not yet checkpointed")
                continue
            if seq not in chain:
                raise ProofError(f"event seq {seq} is not in any segment")
            prev, h, digest = chain[seq]
            if ev["hash"] != h or ev["prev_hash"] != prev:
                raise ProofError(f"event seq {seq}: its hash is not the chain's hash at that seq")
            if key is not None and content_digest(key, proof["merchant"], proof["order"], ev) != digest:
                raise ProofError(f"event seq {seq}: its content does not match its keyed digest")
        return notes
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProofError(f"malformed proof ({exc!r})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livecommerce.verify_proof", description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", help="the proof JSON file ('-' reads standard input)")
    parser.add_argument(
        "--key-env", metavar="NAME", help="also check signatures and event contents with the key in this variable"
    )
    args = parser.parse_args(argv)
    key = None
    if args.key_env:
        if not os.environ.get(args.key_env):
            parser.error(f"the environment variable {args.key_env} is empty")
        key = os.environ[args.key_env].encode()
    try:
        with sys.stdin if args.proof == "-" else open(args.proof, encoding="utf-8") as f:
            proof = json.load(f)
        notes = verify(proof, key=key)
    except (OSError, ValueError) as exc:
        print(f"FAILED: cannot read the proof: {exc}", file=sys.stderr)
        return 1
    except ProofError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    proven = sum(1 for ev in proof["events"] if ev["checkpointed"])
    checkpoints = ", ".join(f"seq {s['checkpoint']['seq']} at {s['checkpoint']['at']}" for s in proof["segments"])
    total = len(proof["events"])
    print(f"order {proof['order']}: {proven} of {total} events verified against checkpoint(s) {checkpoints or '-'}")
    if key is not None:
        print("checkpoint signatures and event contents verified with the ledger key")
    for note in notes:
        print(f"NOTE: {note}")
    return 2 if notes else 0


if __name__ == "__main__":
    raise SystemExit(main())
