"""``./run`` as an operator meets it: a real launcher (``python -m livecommerce.launcher run
--no-demo``, what ``./run`` execs) in a var directory of its own, with its own embedded Valkey, on
this test run's database; then management commands from "a second terminal" (another process
with no REDIS_URL / DATABASE_URL), the first-merchant instructions, the access log and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django_q.models import Schedule
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from apps.core.redis import get_client
from apps.merchants.models import Merchant
from livecommerce import launcher, runtime

from ..factories import MerchantFactory, make_listing
from ..servers import database_url, free_port
from ..waiting import wait_until
from .test_launcher import _tree

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningSystem:
    proc: subprocess.Popen[bytes]
    var: Path
    log: Path
    marker: str
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def info(self) -> dict:
        return json.loads((self.var / runtime.FILE_NAME).read_text())


def second_terminal(var: Path, **extra: str) -> dict[str, str]:
    """The environment of a shell in the checkout: no REDIS_URL, no DATABASE_URL, the laptop settings."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    return {**env, "LC_VAR_DIR": str(var), **extra}


def manage(var: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=second_terminal(var, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def running_system(tmp_path: Path) -> Iterator[RunningSystem]:
    """``./run --no-demo`` started as a terminal would (own session = the foreground group), on
    this test's database and no REDIS_URL: so it starts its embedded Valkey. Yields once it has
    printed its banner and the worker cluster has forked."""
    var = tmp_path / "var"
    log = tmp_path / "run.log"
    marker = uuid.uuid4().hex
    port = free_port()
    env = second_terminal(var, DATABASE_URL=database_url(), LC_TEST_TREE=marker, Q_WORKERS="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livecommerce.launcher", "run", "--no-demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    system = RunningSystem(proc, var, log, marker, port)
    try:

        def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"./run exited with {proc.returncode}:\n{system.output()}")
            return "livecommerce is running" in system.output()

        wait_until(started, timeout=120, interval=0.2, what="./run's banner")
        # the worker's main process, its sentinel, and the sentinel's pusher, monitor and worker
        wait_until(
            lambda: sum("livecommerce.worker" in c for c in _tree(marker).values()) >= 5,
            timeout=60,
            interval=0.2,
            what="the worker cluster",
        )
        yield system
    finally:
        for pid in _tree(marker):  # never leave anything behind, whatever the test did
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(10)


@pytest.mark.django_db(transaction=True)
def test_run_no_demo_on_an_empty_database_prints_how_to_create_the_first_merchant(running_system) -> None:  # type: ignore[no-untyped-def]
    out = running_system.output()
    assert "demo-pass-123" not in out and "demo-token" not in out
    [command] = [line.strip() for line in out.splitlines() if "createmerchant" in line]
    # The printed command, as the operator pastes it in a second terminal, creates the merchant
    # and its owner's login in the running system's database.
    args = shlex.split(command)
    assert args[1:3] == ["manage.py", "createmerchant"]
    done = subprocess.run(
        [sys.executable, *args[1:]],
        cwd=ROOT,
        env=second_terminal(running_system.var),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["merchant"] == "my-shop"
    merchant = Merchant.objects.get(slug="my-shop")
    owner = get_user_model().objects.get(username="owner")
    # hashed with the laptop settings' hasher (the test settings only know MD5)
    assert owner.is_staff and PBKDF2PasswordHasher().verify(args[args.index("--password") + 1], owner.password)
    assert owner.memberships.get().merchant == merchant


@pytest.mark.django_db(transaction=True)
def test_a_command_in_a_second_terminal_acts_on_the_running_systems_valkey(running_system) -> None:  # type: ignore[no-untyped-def]
    Schedule.objects.all().delete()  # the worker's own reconciler must not load the listing first
    listing = make_listing(MerchantFactory())
    run_valkey = redis.Redis.from_url(running_system.info()["redis_url"], decode_responses=True)
    gate_keys = f"lc:{{listing:{listing.pk}}}:*"
    assert not list(run_valkey.scan_iter(gate_keys))  # the running system has not loaded it yet
    get_client().flushdb()  # and the test's own Redis holds nothing either

    done = manage(running_system.var, "reconcile_stock", "--listing", str(listing.pk))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["repaired"][0]["loaded"] is True  # read the listing from our database
    assert list(run_valkey.scan_iter(gate_keys))  # and loaded its gate into ./run's Valkey
    assert not list(get_client().scan_iter(gate_keys))  # not into some other Redis
    expired = manage(running_system.var, "expire_orders")
    assert expired.returncode == 0, expired.stderr
    assert expired.stdout.strip() == "expired 0 order(s)"


@pytest.mark.django_db(transaction=True)
def test_one_request_one_access_log_line_then_ctrl_c_stops_everything_quietly(running_system) -> None:  # type: ignore[no-untyped-def]
    base = f"http://127.0.0.1:{running_system.port}"
    missing, probe = f"/missing-{uuid.uuid4().hex}/", f"/healthz?probe={uuid.uuid4().hex}"
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(base + missing, timeout=10)  # noqa: S310 - our own child server
    with urllib.request.urlopen(base + probe, timeout=10) as r:  # noqa: S310
        assert r.status == 200
    socket_path = f"/ws/listings/{uuid.uuid4().int % 10**9}/"
    with contextlib.suppress(InvalidStatus), ws_connect(f"ws://127.0.0.1:{running_system.port}{socket_path}") as ws:
        ws.close()
    wait_until(lambda: probe in running_system.output(), timeout=30, what="the access log line")
    wait_until(lambda: socket_path in running_system.output(), timeout=30, what="the websocket's line")
    socket = Path(running_system.info()["redis_socket"])
    assert socket.exists()

    started = time.monotonic()
    os.killpg(running_system.proc.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    assert running_system.proc.wait(30) == 0
    wait_until(lambda: not _tree(running_system.marker), timeout=10, what="every child to exit")
    print(f"Ctrl-C to last child gone: {time.monotonic() - started:.2f} s")  # reported, not asserted

    out = running_system.output()
    lines = out.splitlines()
    assert len([line for line in lines if missing in line]) == 1, out  # a 404: not also "Not Found: ..."
    assert len([line for line in lines if probe in line]) == 1, out
    opened = [line for line in lines if socket_path in line and "WSDISCONNECT" not in line]
    assert len(opened) == 1, out  # WSCONNECT or WSREJECT, not also WSCONNECTING
    assert "Traceback" not in out and "ERROR" not in out, out
    assert lines[-1] == "stopped"
    assert not (running_system.var / runtime.FILE_NAME).exists()
    assert not socket.exists()


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_while_starting_stops_what_was_started_quietly(tmp_path: Path) -> None:
    var, marker = tmp_path / "var", uuid.uuid4().hex
    env = second_terminal(var, DATABASE_URL=database_url(), LC_TEST_TREE=marker)
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.launcher", "run", "--no-demo", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # run.json appears once Valkey answers, just before migrate: Ctrl-C lands mid start-up
        wait_until(lambda: (var / runtime.FILE_NAME).exists(), timeout=60, what="run.json")
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode()
    finally:
        for pid in _tree(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert out.splitlines()[-1] == "stopped"
    assert "Traceback" not in out and "ERROR" not in out, out
    wait_until(lambda: not _tree(marker), timeout=15, what="every process it started to exit")
    assert not (var / runtime.FILE_NAME).exists()


# --- no running system --------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run_json", ["missing", "stale"])
def test_with_nothing_running_a_command_that_needs_redis_says_how_to_point_it(tmp_path: Path, run_json: str) -> None:
    var = tmp_path / "var"
    if run_json == "stale":  # what a ./run killed with SIGKILL leaves: its pid is no launcher now
        runtime.write({"settings": runtime.LOCAL_SETTINGS, "redis_url": "redis://127.0.0.1:6379/0"}, var)
        assert runtime.read_live(var) is None
    listing = make_listing(MerchantFactory())
    get_client().flushdb()

    done = manage(var, "reconcile_stock", DATABASE_URL=database_url())

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "./run" in done.stderr and "REDIS_URL" in done.stderr
    assert not list(get_client().scan_iter(f"lc:{{listing:{listing.pk}}}:*"))


@pytest.mark.django_db(transaction=True)
def test_with_nothing_running_commands_that_need_no_redis_still_work(tmp_path: Path) -> None:
    var = tmp_path / "var"
    made = manage(var, "createmerchant", "first", "--name", "First", DATABASE_URL=database_url())
    assert made.returncode == 0, made.stderr
    listed = manage(var, "listmerchants", "--json", DATABASE_URL=database_url())
    assert listed.returncode == 0, listed.stderr
    assert [m["slug"] for m in json.loads(listed.stdout)] == ["first"]
    assert "axes.W001" not in listed.stderr  # no warning about the login throttle's cache either


def test_a_second_terminal_without_a_database_url_uses_the_default_sqlite_file(tmp_path: Path) -> None:
    """What ./run would use too, so ``migrate`` / ``createsuperuser`` prepare the right database."""
    var = tmp_path / "var"
    done = manage(var, "shell", "-c", "from django.conf import settings; print(settings.DATABASES['default']['NAME'])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(var / "db.sqlite3")


# --- the banner -------------------------------------------------------------------------------
def test_banner_shows_the_demo_login_only_when_the_demo_merchant_is_there() -> None:
    demo = launcher.banner("http://127.0.0.1:8000", [{"slug": "demo"}], demo=True)
    assert "demo / demo-pass-123" in demo and "createmerchant" not in demo
    other = launcher.banner("http://127.0.0.1:8000", [{"slug": "tea-house"}], demo=False)
    assert "demo-pass-123" not in other and "createmerchant" not in other
    assert "http://127.0.0.1:8000/live/tea-house/" in other
    empty = launcher.banner("http://127.0.0.1:8000", [], demo=False)
    assert "demo-pass-123" not in empty and "manage.py createmerchant my-shop" in empty
    assert "simulator" not in demo + other + empty


def test_banner_lists_the_demo_platform_simulators() -> None:
    sims = {
        "douyin": "http://127.0.0.1:41001",
        "kuaishou": "http://127.0.0.1:41002",
        "taobao": "http://127.0.0.1:41003",
    }
    text = launcher.banner("http://127.0.0.1:8000", [{"slug": "demo"}], demo=True, simulators=sims)
    for platform, url in sims.items():
        assert f"{platform} simulator" in text and f"{url}/_sim/orders" in text
    assert "payment simulator" not in text


def test_banner_lists_the_payment_simulator() -> None:
    text = launcher.banner("http://127.0.0.1:8000", [{"slug": "demo"}], demo=True, payment="http://127.0.0.1:8790")
    [line] = [line for line in text.splitlines() if "payment simulator" in line]
    assert line.split() == ["payment", "simulator", "http://127.0.0.1:8790/_sim/refunds"]


# --- the runtime file ---------------------------------------------------------------------------
def test_runtime_file_is_owner_only_and_removed_only_by_its_writer(tmp_path: Path) -> None:
    path = runtime.write({"redis_url": "unix:///nowhere.sock"}, tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    info = json.loads(path.read_text())
    assert info["pid"] == os.getpid()
    path.write_text(json.dumps({**info, "pid": info["pid"] + 1}))  # another ./run wrote it since
    runtime.remove(tmp_path)
    assert path.exists()
    path.write_text(json.dumps(info))
    runtime.remove(tmp_path)
    assert not path.exists()


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"pid": "1"}', "this process"])
def test_runtime_file_that_is_not_a_live_launchers_is_ignored(tmp_path: Path, content: str) -> None:
    if content == "this process":  # a live pid, not a launcher's (ids stay the same in every worker)
        content = json.dumps({"pid": os.getpid()})
    (tmp_path / runtime.FILE_NAME).write_text(content)
    assert runtime.read_live(tmp_path) is None
