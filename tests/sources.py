"""Reading this project's own source in tests that check it (``ast``)."""

from __future__ import annotations

import ast
import pathlib


def parse_source(path: pathlib.Path) -> ast.Module:
    """``ast.parse`` of a source file, tried again on CPython 3.11's spurious ``SystemError: AST
    constructor recursion depth mismatch``: the AST builder's depth counter is shared by the
    interpreter's threads, and Python 3.11 formats a traceback's carets with ``ast.parse``, so a
    background thread logging an exception (a live server's, a worker pool's) while this parse
    runs can trip it (python/cpython#106905). The source is the same; a second parse succeeds."""
    source = path.read_text(encoding="utf-8")
    for _ in range(2):
        try:
            return ast.parse(source, filename=str(path))
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(source, filename=str(path))
