"""Running the project's own processes (ASGI servers, the worker) against this test run's
database and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from .waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The database this pytest process tests on, as a URL for a child process."""
    sd = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{sd['NAME']}"
    if connection.vendor == "postgresql":
        auth = quote(sd.get("USER") or "", safe="")
        if sd.get("PASSWORD"):
            auth += ":" + quote(sd["PASSWORD"], safe="")
        return f"postgres://{auth}@{sd.get('HOST') or '127.0.0.1'}:{sd.get('PORT') or 5432}/{sd['NAME']}"
    raise RuntimeError(f"cannot share a {connection.vendor} database with a child process")


def child_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "livecommerce.settings.test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own child server
            return r.status == 200

    wait_until(answers, timeout=timeout, interval=0.2, what=f"{url} to answer 200", ignore=(OSError,))


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stop a child started with ``start_new_session=True`` together with its own children."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def uvicorn(workers: int = 2) -> Iterator[int]:
    """uvicorn workers serving the production ASGI app on a free port, started the way
    production starts them (``livecommerce.serve``); yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.serve", "--workers", str(workers), "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=settings.BASE_DIR,
        env=child_env(),
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield port
    finally:
        stop(proc)
