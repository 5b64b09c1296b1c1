"""``tests.sources.parse_source``: CPython 3.11's spurious AST depth error is tried again, any
other error is not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .. import sources

HERE = Path(__file__)


def test_a_spurious_depth_mismatch_is_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = ast.parse, []

    def trips_once(*args: object, **kwargs: object) -> ast.Module:
        calls.append(1)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=141, after=67)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sources.ast, "parse", trips_once)
    tree = sources.parse_source(HERE)
    assert len(calls) == 2 and any(isinstance(n, ast.FunctionDef) for n in tree.body)


def test_other_errors_and_a_lasting_mismatch_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*_args: object, **_kwargs: object) -> ast.Module:
        raise SystemError("something else")

    monkeypatch.setattr(sources.ast, "parse", fails)
    with pytest.raises(SystemError, match="something else"):
        sources.parse_source(HERE)

    def always(*_args: object, **_kwargs: object) -> ast.Module:
        raise SystemError("AST constructor recursion depth mismatch (before=1, after=2)")

    monkeypatch.setattr(sources.ast, "parse", always)
    with pytest.raises(SystemError, match="mismatch"):
        sources.parse_source(HERE)
