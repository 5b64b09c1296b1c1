"""The running system's address book: ``var/run.json``, written by ``./run``, read by the laptop
settings, so ``python manage.py <command>`` in a second terminal uses the same embedded Valkey
and the same database as the system that is running.

``./run`` starts a private Valkey on a unix socket named after its pid; nothing else can guess
that address, and the laptop settings must not guess ``127.0.0.1:6379`` instead (whatever answers
there is not the running system's gate). So ``./run`` writes what it uses here (mode 0600: the
database URL may carry a password), and removes the file when it stops. A file whose owner is no
longer a running launcher (``./run`` was killed with SIGKILL) is ignored.

Standard library only: the launcher imports it before Django is set up, and settings read it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FILE_NAME = "run.json"
LAUNCHER_MODULE = "livecommerce.launcher"
LOCAL_SETTINGS = "livecommerce.settings.local"
# Where the laptop settings send refunds (PAYMENT_PROVIDER_URL unset): ``manage.py payment_simulator``
# on its default port, which ``./run`` starts with the demo.
LOCAL_PAYMENT_PROVIDER_URL = "http://127.0.0.1:8790"


def var_dir() -> Path:
    """Where the laptop default keeps its state (SQLite database, Valkey socket, run.json, demo
    token); ``LC_VAR_DIR`` moves it (tests run a whole ``./run`` in a directory of their own)."""
    return Path(os.environ.get("LC_VAR_DIR") or ROOT / "var")


def default_database_url(var: Path | None = None) -> str:
    return f"sqlite:///{(var or var_dir()) / 'db.sqlite3'}"


def _is_launcher(pid: int) -> bool:
    """Whether ``pid`` is a live ``python -m livecommerce.launcher`` (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return LAUNCHER_MODULE.encode() in args


def write(info: dict[str, Any], var: Path | None = None) -> Path:
    """Write ``info`` (plus our pid) as the running system's file; atomic, owner-only."""
    path = (var or var_dir()) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**info, "pid": os.getpid()}, f, indent=2)
    os.replace(tmp, path)
    return path


def remove(var: Path | None = None) -> None:
    """Remove the file if it is ours (a second ./run may have written its own meanwhile)."""
    path = (var or var_dir()) / FILE_NAME
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


@contextlib.contextmanager
def published(info: dict[str, Any], var: Path | None = None) -> Iterator[Path]:
    path = write(info, var)
    try:
        yield path
    finally:
        remove(var)


def read_live(var: Path | None = None) -> dict[str, Any] | None:
    """The running system's file, or None when there is none or its launcher is gone."""
    path = (var or var_dir()) / FILE_NAME
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int) or not _is_launcher(info["pid"]):
        return None
    socket_path = info.get("redis_socket")
    if socket_path and not Path(socket_path).exists():  # its Valkey is gone (stopping, or killed)
        return None
    return info
