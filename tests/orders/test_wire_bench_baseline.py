"""The wire benchmark (``bench/flash_sale/wire.py``) compares a run with today's baseline: the
oldest run in its results, by when it ran. By name, ``wire-<date>-2.json`` (a later run that day)
sorts before ``wire-<date>.json`` and was taken for the baseline once."""

from __future__ import annotations

import json
from pathlib import Path

from bench.flash_sale import wire


def _run(path: Path, started: str, rps: float) -> Path:
    row = {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_us": 100.0, "redis_cpu_us": 10.0}
    path.write_text(json.dumps({"started": started, "rounds": [dict.fromkeys(wire.ROWS, row)]}))
    return path


def test_the_baseline_is_the_oldest_run_by_its_time_not_by_its_file_name(tmp_path, monkeypatch):
    monkeypatch.setattr(wire, "RESULTS", tmp_path)
    first = _run(tmp_path / "wire-2026-12-03.json", "2026-12-03 06:28 UTC", 100)
    _run(tmp_path / "wire-2026-12-03-2.json", "2026-12-03 10:12 UTC", 200)
    this = _run(tmp_path / "wire-2026-12-04.json", "2026-12-04 08:49 UTC", 300)
    found = wire.previous(None, this)
    assert found is not None and found[0] == first
    # an explicit --compare file is taken as it is
    assert wire.previous(this, None)[0] == this  # type: ignore[index]
