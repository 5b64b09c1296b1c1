"""Every `extra=` handed to a logger uses keys a LogRecord does not already have.

`logging` raises KeyError("Attempt to overwrite 'message' in LogRecord") for such a key, and
only when the line runs: inside an `except` block that is the moment something already went
wrong, and the log call turns a handled failure into an unhandled one (a CI run found
`extra={"message": ...}` in the platform inbox's failure path this way)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from ..sources import parse_source

ROOT = Path(__file__).resolve().parents[2]
RESERVED = set(vars(logging.LogRecord("n", logging.INFO, "p", 0, "m", None, None))) | {"message", "asctime"}


def _extra_keys() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / "apps").rglob("*.py")) + sorted((ROOT / "livecommerce").rglob("*.py")):
        for node in ast.walk(parse_source(path)):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                    for key in kw.value.keys:
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            found.append((str(path.relative_to(ROOT)), node.lineno, key.value))
    return found


def test_the_scan_sees_the_log_calls() -> None:
    keys = _extra_keys()
    assert len(keys) > 30  # the scan reads the code base, not an empty list
    assert any(k == "order" for _, _, k in keys)


def test_no_extra_key_overwrites_a_log_record_attribute() -> None:
    clashes = [f"{path}:{line} extra key {key!r}" for path, line, key in _extra_keys() if key in RESERVED]
    assert not clashes, clashes


def test_a_reserved_key_really_raises() -> None:  # what the scan guards against
    logger = logging.getLogger("livecommerce.test")
    try:
        logger.warning("x", extra={"message": 1})
    except KeyError as exc:
        assert "message" in str(exc)
    else:  # pragma: no cover - logging changed its rules
        raise AssertionError("logging accepted an extra key that overwrites a LogRecord attribute")
