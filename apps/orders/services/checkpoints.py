"""Signed checkpoints of the order ledger, kept outside the database.

One append-only JSON-lines file per merchant, ``<LEDGER_CHECKPOINT_DIR>/merchant-<id>.jsonl``;
each line says "the merchant's chain had reached ``seq`` with hash ``head_hash`` at ``at``":

    {"at": "2025-05-01T12:00:00.000000+00:00", "head_hash": "9f…", "merchant": 4, "seq": 1234, "sig": "3a…"}

``sig`` is HMAC-SHA256 with ``LEDGER_KEY`` over the canonical JSON of the other four fields
(sorted keys, no spaces, UTF-8). A line is only evidence while whoever can write the database
cannot rewrite this file: production points ``LEDGER_CHECKPOINT_DIR`` at storage the database
admins cannot change (a WORM / object-lock bucket mount, an append-only directory on another
host). This module is the file format only; ``ledger.ledger_checkpoint`` decides what to sign.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FIELDS = ("merchant", "seq", "head_hash", "at")
HEX64 = re.compile(r"[0-9a-f]{64}")
FILE_NAME = re.compile(r"merchant-(\d+)\.jsonl")


def ledger_key() -> bytes:
    """``settings.LEDGER_KEY``: keys the events' content digests and signs checkpoints. It is
    never written to the database."""
    key = getattr(settings, "LEDGER_KEY", "")
    if not key:
        raise ImproperlyConfigured("LEDGER_KEY is not set: the order ledger cannot be written or verified")
    return key.encode()


def canonical(fields: dict[str, Any]) -> bytes:
    """What a checkpoint signature covers: the four fields as canonical JSON."""
    return json.dumps(
        {k: fields[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def checkpoint_sign(*, merchant: int, seq: int, head_hash: str, at: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"merchant": merchant, "seq": seq, "head_hash": head_hash, "at": at}
    return {**fields, "sig": hmac.new(ledger_key(), canonical(fields), hashlib.sha256).hexdigest()}


def checkpoint_problem(line: Any, *, merchant_id: int) -> str | None:
    """Why ``line`` is not a valid checkpoint of ``merchant_id`` (None: it is)."""
    if not isinstance(line, dict) or set(line) != {*FIELDS, "sig"}:
        return "not a checkpoint line (fields missing or extra)"
    if not isinstance(line["merchant"], int) or not isinstance(line["seq"], int) or line["seq"] < 0:
        return "merchant and seq must be integers"
    if not isinstance(line["head_hash"], str) or not HEX64.fullmatch(line["head_hash"]):
        return "head_hash is not a sha256 hex digest"
    if not isinstance(line["at"], str) or not isinstance(line["sig"], str):
        return "at and sig must be strings"
    if line["merchant"] != merchant_id:
        return f"the line is for merchant {line['merchant']}"
    expected = hmac.new(ledger_key(), canonical(line), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, line["sig"]):
        return "signature invalid (forged or altered checkpoint)"
    return None


def checkpoint_dir() -> Path:
    return Path(settings.LEDGER_CHECKPOINT_DIR)


def checkpoint_path(merchant_id: int) -> Path:
    return checkpoint_dir() / f"merchant-{merchant_id}.jsonl"


def checkpoint_merchants() -> list[int]:
    """Merchants that have a checkpoint file (whether or not the database still knows them)."""
    d = checkpoint_dir()
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := FILE_NAME.fullmatch(p.name)))


@dataclass(frozen=True)
class CheckpointEntry:
    lineno: int
    line: dict[str, Any] | None  # None when the line is not a valid checkpoint
    problem: str | None


def _entry(raw: bytes, lineno: int, merchant_id: int) -> CheckpointEntry:
    try:
        line = json.loads(raw)
    except ValueError:
        return CheckpointEntry(lineno, None, "not JSON (a torn or altered line)")
    problem = checkpoint_problem(line, merchant_id=merchant_id)
    return CheckpointEntry(lineno, None if problem else line, problem)


def checkpoint_entries(merchant_id: int) -> Iterator[CheckpointEntry]:
    """Every non-empty line of the merchant's file, in order, each checked."""
    path = checkpoint_path(merchant_id)
    if not path.exists():
        return
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                yield _entry(raw, lineno, merchant_id)


def _lines_backwards(path: Path, block: int = 8192) -> Iterator[bytes]:
    with path.open("rb") as f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""  # the first (maybe partial) line of what has been read so far
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            parts = (f.read(step) + rest).split(b"\n")
            rest = parts[0]
            yield from (x for x in reversed(parts[1:]) if x.strip())
        if rest.strip():
            yield rest


def checkpoint_latest(merchant_id: int) -> dict[str, Any] | None:
    """The merchant's newest validly signed checkpoint (read from the end of the file)."""
    path = checkpoint_path(merchant_id)
    if not path.exists():
        return None
    for raw in _lines_backwards(path):
        entry = _entry(raw, 0, merchant_id)
        if entry.line is not None:
            return entry.line
    return None


def _seek_line_at_or_after(f: Any, offset: int) -> None:
    f.seek(max(0, offset - 1))
    if offset:
        f.readline()  # through the newline that ends the line holding offset - 1


def checkpoint_covering(merchant_id: int, seq: int) -> dict[str, Any] | None:
    """The first validly signed checkpoint at or after ``seq`` (None: not yet checkpointed).
    Lines are appended in seq order, so a binary search over byte offsets finds the place (lines
    starting before ``lo`` have a smaller seq; the first line starting at or after ``hi`` has
    seq >= ``seq``); the scan from there skips lines that do not verify."""
    path = checkpoint_path(merchant_id)
    if not path.exists():
        return None
    with path.open("rb") as f:
        lo, hi = 0, f.seek(0, os.SEEK_END)
        while lo < hi:
            mid = (lo + hi) // 2
            _seek_line_at_or_after(f, mid)
            line_seq = None  # the seq of the first readable line from mid on (None: end of file)
            while line_seq is None and (raw := f.readline()):
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    line_seq = json.loads(raw)["seq"]
                line_seq = line_seq if isinstance(line_seq, int) else None  # unreadable lines are skipped
            if line_seq is None or line_seq >= seq:
                hi = mid
            else:
                lo = f.tell()
        _seek_line_at_or_after(f, lo)
        for raw in f:
            if raw.strip():
                entry = _entry(raw, 0, merchant_id)
                if entry.line is not None and entry.line["seq"] >= seq:
                    return entry.line
    return None


def checkpoint_append(line: dict[str, Any]) -> None:
    """Append one signed line and fsync it (the caller holds ``checkpoint_lock``)."""
    path = checkpoint_path(line["merchant"])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    with path.open("ab") as f:
        if f.tell() > 0:  # a torn last line (crash mid-write) must not swallow this one
            with path.open("rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    data = b"\n" + data
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def checkpoint_lock() -> Iterator[bool]:
    """One checkpoint writer at a time (the scheduled task and the command may overlap): yields
    False when another holds it."""
    d = checkpoint_dir()
    d.mkdir(parents=True, exist_ok=True)
    with (d / ".lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
