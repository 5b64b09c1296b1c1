"""``./run`` (livecommerce.launcher): the warning when it is reachable from other machines, and no
process outliving it, whichever way it is stopped or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecommerce import launcher

from ..servers import child_env, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "[::]", "shop.lan"])
def test_run_warns_when_bound_to_a_non_loopback_host(host: str) -> None:
    warning = launcher.bind_warning(host, launcher.LOCAL_SETTINGS)
    assert warning is not None
    assert host in warning
    for what in ("DEBUG", "SECRET_KEY", "sandbox pay button", "127.0.0.1"):
        assert what in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_run_does_not_warn_on_loopback(host: str) -> None:
    assert launcher.bind_warning(host, launcher.LOCAL_SETTINGS) is None


def test_run_does_not_warn_with_production_settings() -> None:
    assert launcher.bind_warning("0.0.0.0", "livecommerce.settings.production") is None


def test_cmd_run_prints_the_warning_before_starting_anything(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", launcher.LOCAL_SETTINGS)

    class Started(Exception):
        pass

    def services(tag: str) -> None:
        raise Started

    monkeypatch.setattr(launcher, "services", services)
    opts = launcher.argparse.Namespace(host="0.0.0.0", port=8000, no_demo=True)
    with pytest.raises(Started):
        launcher.cmd_run(opts)
    assert "WARNING: ./run is listening on 0.0.0.0" in capsys.readouterr().err


# --- no orphans ---------------------------------------------------------------------------------
def _tree(marker: str) -> dict[int, str]:
    """Live processes carrying our environment marker (inherited by every exec and fork)."""
    found = {}
    needle = f"LC_TEST_TREE={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


# As ./run does after migrating: its own embedded Valkey (which dies with it, so a worker left
# behind also loses its broker), the web server and the worker cluster, then the watch loop.
LAUNCH = """
import os, sys
from livecommerce import launcher
os.environ.pop("REDIS_URL", None)
with launcher.services("tree"):
    children = launcher.start_children("127.0.0.1", int(sys.argv[1]), dict(os.environ))
    sys.exit(launcher.watch(children))
"""


@pytest.fixture
def running_launcher() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The launcher's process-starting code (daphne + qcluster, as ``./run`` starts them after
    migrating), in its own process group, on this run's database; yields once the web server
    answers and the worker cluster has forked its processes."""
    marker = uuid.uuid4().hex
    port = free_port()
    env = child_env(LC_TEST_TREE=marker, LC_Q_SYNC="0", Q_WORKERS="2")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(port)], cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=40)
        # qcluster's main process, its sentinel and the forked monitor, pusher and workers
        assert _wait(lambda: sum("livecommerce.worker" in c for c in _tree(marker).values()) >= 4, 30), _tree(marker)
        yield proc, marker
    finally:
        for pid in _tree(marker):  # never leave anything behind, whatever the test did
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(5)
        (ROOT / "var" / f"redis-tree-{proc.pid}.sock").unlink(missing_ok=True)  # left by the SIGKILL


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["launcher", "process group"])
def test_sigkill_of_the_launcher_takes_the_worker_tree_with_it(running_launcher, how: str) -> None:  # type: ignore[no-untyped-def]
    proc, marker = running_launcher
    if how == "launcher":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
    # the supervisor gives the cluster STOP_GRACE seconds to finish, then SIGKILLs what is left
    assert _wait(lambda: not _tree(marker), launcher.STOP_GRACE + 5), _tree(marker)


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_stops_everything_quickly(running_launcher) -> None:  # type: ignore[no-untyped-def]
    proc, marker = running_launcher
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
    assert proc.wait(launcher.STOP_GRACE + 5) == 0
    assert _wait(lambda: not _tree(marker), 2), _tree(marker)
    assert time.monotonic() - started < launcher.STOP_GRACE + 5
