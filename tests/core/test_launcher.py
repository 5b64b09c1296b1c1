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


# --- the demo's payment provider simulator ------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8790"),  # the laptop settings' default
        ({"DJANGO_SETTINGS_MODULE": launcher.LOCAL_SETTINGS, "PAYMENT_PROVIDER_URL": ""}, "http://127.0.0.1:8790"),
        ({"PAYMENT_PROVIDER_URL": "http://localhost:9100/"}, "http://localhost:9100"),
        ({"PAYMENT_PROVIDER_URL": "http://127.0.0.1"}, "http://127.0.0.1:80"),
        ({"PAYMENT_PROVIDER_URL": "https://api.pay.example.com"}, None),  # a real provider
        ({"PAYMENT_PROVIDER_URL": "http://192.168.1.20:8790"}, None),  # another machine
        ({"PAYMENT_PROVIDER_URL": "http://127.0.0.1:8790/sandbox"}, None),  # not what the simulator serves
        ({"PAYMENT_PROVIDER_URL": "http://[::1]:8790"}, None),
        ({"PAYMENT_PROVIDER_URL": "http://127.0.0.1:port"}, None),
        ({"DJANGO_SETTINGS_MODULE": "livecommerce.settings.production"}, None),  # sends no refunds unless told
    ],
)
def test_run_serves_the_payment_simulator_where_the_system_sends_refunds(env: dict[str, str], url: str | None) -> None:
    assert launcher.payment_simulator_url(env) == url


def test_the_local_settings_send_refunds_to_the_simulators_default_port() -> None:
    from urllib.parse import urlsplit

    from apps.fulfilment.payments.simulator import DEFAULT_PORT

    assert urlsplit(launcher.runtime.LOCAL_PAYMENT_PROVIDER_URL).port == DEFAULT_PORT


def test_run_gives_the_server_its_own_address_as_public_base_url_unless_set(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://shop.example.com")  # restored after the test either way
    assert launcher.public_base_url("http://127.0.0.1:8000") == "https://shop.example.com"
    monkeypatch.delenv("PUBLIC_BASE_URL")
    assert launcher.public_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert os.environ["PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"  # what the server and worker inherit


def test_the_payment_simulator_child_takes_the_servers_account_and_stops_with_the_launcher(settings) -> None:  # type: ignore[no-untyped-def]
    """Started as ``./run`` starts it, in the environment the server gets (here the test settings,
    whose account is not the simulator's built-in demo one): a sandbox payment registers, a refund
    signed with the server's settings is accepted; a second start finds it there; the launcher's
    stop takes it and everything it forked."""
    from decimal import Decimal

    from apps.fulfilment.payments.client import refund_client
    from apps.fulfilment.payments.protocol import RefundCall
    from apps.fulfilment.payments.sandbox import sandbox_payment_register

    marker = uuid.uuid4().hex
    url = f"http://127.0.0.1:{free_port()}"
    env = child_env(LC_TEST_TREE=marker)
    proc = launcher.start_payment_simulator(url, env)
    assert proc is not None and proc.simulator  # type: ignore[attr-defined]  # stopped last
    try:
        wait_for_http(f"{url}/_sim/health", proc, timeout=40)
        settings.PAYMENT_PROVIDER_URL = url
        assert sandbox_payment_register(transaction_id="sandbox-launch", amount=Decimal("20.00"))
        refund = RefundCall(
            refund_no="RFLAUNCH0001",
            transaction_id="sandbox-launch",
            amount=Decimal("20.00"),
            reason="test",
            notify_url="http://127.0.0.1:9/hooks/payments/refunds",
        )
        with refund_client() as provider:
            assert provider.create_refund(refund).status == "processing"
        assert launcher.start_payment_simulator(url, env) is None  # already there: refunds go to it
        launcher.stop_children([proc])
        assert proc.returncode is not None
        assert _wait(lambda: not _tree(marker), 5), _tree(marker)
        assert not launcher.is_listening(url)
    finally:
        for pid in _tree(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- a stop while a child is being forked ----------------------------------------------------------


def test_a_child_starts_with_ctrl_c_and_sigterm_not_held_back() -> None:
    proc = launcher.spawn(
        [sys.executable, "-c", "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"],
        stdout=subprocess.PIPE,
    )
    out, _ = proc.communicate(timeout=30)
    assert out.decode().strip() == "[]"
    assert not launcher.STOP_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, [])  # nor in the parent


def test_a_stop_that_lands_while_forking_stops_the_child_and_leaves_logging_usable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C during the fork used to raise inside logging's at-fork handler: swallowed there with
    logging's lock held, and ./run hung at its next log line. Now it waits until the child exists,
    then stops it and the start-up."""
    import logging
    import threading

    assert threading.current_thread() is threading.main_thread()
    real_popen = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def popen_with_a_stop_inside(*args, **kwargs):  # type: ignore[no-untyped-def]
        # Ctrl-C arrives while the fork is under way (to this thread: ./run has no other thread,
        # the test process may have some, and they do not hold it back)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        child = real_popen(*args, **kwargs)
        children.append(child)
        return child

    previous = signal.signal(signal.SIGINT, launcher._stop_while_starting)
    monkeypatch.setattr(launcher.subprocess, "Popen", popen_with_a_stop_inside)
    try:
        with pytest.raises(launcher.Stopped):
            launcher.spawn([sys.executable, "-c", "import time; time.sleep(60)"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(children) == 1 and children[0].wait(10) is not None  # the child was stopped
    taken = threading.Event()

    def log_once() -> None:
        logging.getLogger("livecommerce.test").warning("still logging")
        taken.set()

    worker = threading.Thread(target=log_once, daemon=True)
    worker.start()
    assert taken.wait(5), "logging's lock is held"


def test_the_suite_runs_in_one_worker_per_core_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from livecommerce.launcher import test_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert test_workers([], {}) == ["-n", "2", "--dist", "loadfile"]
    assert test_workers(["tests/orders", "-x"], {}) == ["-n", "2", "--dist", "loadfile"]
    assert test_workers([], {"LC_TEST_WORKERS": "3"}) == ["-n", "3", "--dist", "loadfile"]
    assert test_workers([], {"LC_TEST_WORKERS": "1"}) == []  # one process, as before
    for chosen in (["-n", "4"], ["-n4"], ["--numprocesses=4"], ["-p", "no:xdist"], ["-pno:xdist"], ["--pdb"]):
        assert test_workers(chosen, {}) == [], chosen
    with pytest.raises(SystemExit, match="LC_TEST_WORKERS"):
        test_workers([], {"LC_TEST_WORKERS": "two"})
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert test_workers([], {}) == ["-n", "4", "--dist", "loadfile"]  # at most 4 by default
