"""Buyers' status-link tokens (``/o/<id>/?t=<token>``, ``/ws/orders/<id>/?t=<token>``) never reach
a log line: Django's request log, the JSON formatter, uvicorn's and daphne's access logs."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from apps.core.logging import JsonFormatter, RedactTokenFilter, RequestIdFilter, redact_url
from livecommerce.daphne_server import RedactingAccessLogGenerator

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "1vXk2a:Q3x9SECRETtokenValue_-"


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        (f"/o/abc/?t={TOKEN}", "/o/abc/?t=[redacted]"),
        (f"/ws/orders/abc/?t={TOKEN}", "/ws/orders/abc/?t=[redacted]"),
        (f"GET /o/abc/?lang=en&t={TOKEN}&x=1 HTTP/1.1", "GET /o/abc/?lang=en&t=[redacted]&x=1 HTTP/1.1"),
        (f"/o/abc/?t={TOKEN}#pay", "/o/abc/?t=[redacted]#pay"),
        (f"/o/abc/%3Ft%3D{TOKEN}", f"/o/abc/%3Ft%3D{TOKEN}"),  # not a query parameter
        (f"next=/o/abc/%3Ft={TOKEN}", "next=/o/abc/%3Ft=[redacted]"),  # one percent-encoded in another URL
        ("/live/demo/?listing=3&at=5", "/live/demo/?listing=3&at=5"),  # `at=` is not `t=`
    ],
)
def test_redact_url_takes_out_the_t_parameter_only(logged: str, expected: str) -> None:
    assert redact_url(logged) == expected


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production console handler: JSON formatter, request id and token filters."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactTokenFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/o/NoSuchOrder1/", "/o/NoSuchOrder1/cancel/"])
def test_django_request_log_of_a_status_link_has_no_token(json_log: io.StringIO, path: str) -> None:
    r = Client().get(path, {"t": TOKEN})
    assert 400 <= r.status_code < 500
    out = json_log.getvalue()
    assert out, "the 4xx was not logged"
    line = json.loads(out.splitlines()[-1])
    # Django logs the path only, but the record carries the request, whose repr has the query.
    assert "t=[redacted]" in line["request"]
    assert "SECRET" not in out


def test_json_formatter_redacts_message_extras_and_traceback() -> None:
    try:
        raise ValueError(f"bad link /o/abc/?t={TOKEN}")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "opening %s", (f"/o/abc/?t={TOKEN}",), sys.exc_info(),
            extra={"url": f"/ws/orders/abc/?t={TOKEN}"},
        )  # fmt: skip
    out = JsonFormatter().format(record)
    assert "SECRET" not in out
    body = json.loads(out)
    assert body["msg"] == "opening /o/abc/?t=[redacted]"
    assert body["url"] == "/ws/orders/abc/?t=[redacted]"


def test_token_filter_redacts_positional_and_mapping_arguments() -> None:
    positional = logging.makeLogRecord(
        {"msg": '%s - "%s %s HTTP/%s" %d', "args": ("1.2.3.4:5", "GET", f"/o/a/?t={TOKEN}", "1.1", 200)}
    )
    mapping = logging.LogRecord(
        "django.channels.server", logging.INFO, __file__, 1, "HTTP %(method)s %(path)s",
        ({"method": "GET", "path": f"/o/a/?t={TOKEN}"},), None,
    )  # fmt: skip
    for record in (positional, mapping):
        assert RedactTokenFilter().filter(record)
        assert "SECRET" not in record.getMessage() and "t=[redacted]" in record.getMessage()
    assert positional.args[4] == 200  # uvicorn's access formatter unpacks exactly five arguments


def test_django_console_handler_carries_the_token_filter() -> None:
    from livecommerce.settings import base

    assert "redact_tokens" in base.LOGGING["handlers"]["console"]["filters"]
    assert base.LOGGING["filters"]["redact_tokens"]["()"] == "apps.core.logging.RedactTokenFilter"


UVICORN_LOGS = """
import logging.config
from livecommerce.serve import log_config
logging.config.dictConfig(log_config())
token = "TOKEN"
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "10.0.0.7:51234", "GET", "/o/abc/?t=" + token, "1.1", 200
)
ws = "/ws/orders/abc/?t=" + token
logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', "10.0.0.7:51235", ws)
"""


def test_uvicorn_access_and_websocket_log_lines_have_no_token() -> None:
    """``livecommerce.serve`` configures uvicorn's logging with the token filter (a separate
    process: uvicorn's logging config replaces the process's handlers)."""
    r = subprocess.run(
        [sys.executable, "-c", UVICORN_LOGS.replace("TOKEN", TOKEN)],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert '"GET /o/abc/?t=[redacted] HTTP/1.1" 200' in r.stdout
    assert '"WebSocket /ws/orders/abc/?t=[redacted]" [accepted]' in r.stderr
    assert "SECRET" not in r.stdout + r.stderr


def test_daphne_access_log_has_no_token() -> None:
    stream = io.StringIO()
    log = RedactingAccessLogGenerator(stream)
    log(
        "http",
        "complete",
        {"client": "10.0.0.7:1", "method": "GET", "path": f"/o/abc/?t={TOKEN}", "status": 200, "size": 10},
    )
    for action in ("connecting", "connected", "rejected", "disconnected"):
        log("websocket", action, {"client": "10.0.0.7:2", "path": f"/ws/orders/abc/?t={TOKEN}"})
    out = stream.getvalue()
    assert '"GET /o/abc/?t=[redacted]" 200 10' in out
    for word in ("WSCONNECT", "WSREJECT", "WSDISCONNECT"):
        assert f'"{word} /ws/orders/abc/?t=[redacted]"' in out
    assert "WSCONNECTING" not in out  # WSCONNECT / WSREJECT says it, with how it ended
    assert "SECRET" not in out


def test_run_starts_daphne_through_the_redacting_entry_point() -> None:
    from livecommerce import launcher

    source = Path(launcher.__file__).read_text()
    assert '"livecommerce.daphne_server"' in source
    assert '"-m", "daphne"' not in source
