"""Structured JSON logs carrying the request id of the request being served, with buyers'
status-link tokens taken out of every logged URL.

A buyer's status page is ``/o/<public_id>/?t=<token>`` and its websocket
``/ws/orders/<id>/?t=<token>``: the token is the whole credential for that order (name, phone,
address, cancel button), so an access log that keeps it hands every order to whoever reads the
logs. This module only imports the standard library: ``livecommerce.serve`` and the daphne entry
point use it before Django is set up.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# What a proxy's X-Request-ID may be. Anything else (control characters, markup, a megabyte) is
# replaced by a fresh id, never echoed or logged.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def request_id_from(incoming: str | None) -> str:
    """The request id to use: the proxy's ``X-Request-ID`` if it is well-formed, else a new one.
    The one rule for Django's middleware and the ASGI order fast path."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{_ids.getrandbits(128):032x}"


# A new id: 128 random bits, as a uuid4's, from a generator seeded by the OS once per process
# (again in a forked worker): no system call per request, and opaque (a counter would tell any
# client how busy a worker is). Not a secret: request ids are for finding log lines.
_ids = random.Random()


def _reseed() -> None:
    _ids.seed(os.urandom(32))


_reseed()
os.register_at_fork(after_in_child=_reseed)


# ``t`` as a query parameter, raw or percent-encoded (``%3Ft=`` / ``%26t=``), up to the next
# parameter, fragment, whitespace, quote or backslash (a JSON escape).
_TOKEN_PARAM = re.compile(r"((?:[?&;]|%3[Ff]|%26)t=)[^&;#\s\"'<>\\]*")
REDACTED = "[redacted]"


def redact_url(text: str) -> str:
    """``text`` with the value of every ``t=`` query parameter replaced by ``[redacted]``."""
    if "t=" not in text:
        return text
    return _TOKEN_PARAM.sub(r"\1" + REDACTED, text)


def _redact_value(value: Any) -> Any:
    return redact_url(value) if isinstance(value, str) else value


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RedactTokenFilter(logging.Filter):
    """Redact status-link tokens in a record's message and arguments (uvicorn's access log passes
    the path with its query string as an argument; Django's runserver-style loggers do too).
    Put it on handlers, so records propagated from any logger are covered."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact_value(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        return True


class JsonFormatter(logging.Formatter):
    _skip = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in self._skip and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        # Redact the finished line: extras such as Django's ``request`` (whose repr is the full
        # path with its query string) and tracebacks are covered too. JSON leaves ``?``, ``&``
        # and ``=`` as they are, so the pattern sees them.
        return redact_url(json.dumps(body, default=str, ensure_ascii=False))
