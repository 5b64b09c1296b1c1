"""Browser tests: real headless Chromium (Debian's, not a Playwright download) against a real daphne
server started here on a free port, on the test database of this pytest process (the SQLite test
file, or the PostgreSQL test database) and the same Redis.

Artifacts (git-ignored) go to test-artifacts/: screenshots/ (what the tests take), server.log (the
whole run's server output) and, per test, <test name>/server.log (the server's output while that
test ran) plus, when the test fails, a screenshot of each open page; a failure report ends with
the tail of that test's server log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from .. import servers
from ..waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000  # any page step; generous: a loaded CI machine, never a fixed sleep
LOG_TAIL = 80  # lines of a failed test's server log in its report


def test_dir(item: pytest.Item) -> Path:
    return ARTIFACTS / re.sub(r"[^\w.\[\]-]+", "_", item.name)


class ServerLog:
    """The server's stdout and stderr, copied line by line to the run's log and to the log of
    the test running now (daphne writes one access-log line per request and websocket)."""

    def __init__(self, stream: IO[bytes], path: Path, base_url: str) -> None:
        self.base_url = base_url
        self._stream = stream
        self._lock = threading.Lock()
        self._all = path.open("wb")
        self._test: IO[bytes] | None = None
        self._recent: deque[bytes] = deque(maxlen=200)
        self._thread = threading.Thread(target=self._pump, name="server-log", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in iter(self._stream.readline, b""):
            with self._lock:
                self._all.write(line)
                self._all.flush()
                if self._test is not None:
                    self._test.write(line)
                    self._test.flush()
                self._recent.append(line)

    def sync(self, timeout: float = 10) -> bool:
        """Wait until everything the server printed so far has been copied: ask it for a marked
        request and wait for that request's access-log line. False if the server does not answer
        (its log is then as complete as it gets)."""
        mark = uuid.uuid4().hex
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz?log-mark={mark}", timeout=timeout):  # noqa: S310
                pass
            wait_until(
                lambda: any(mark.encode() in line for line in list(self._recent)),
                timeout=timeout,
                what="the server's access-log line for the log mark",
            )
        except (OSError, AssertionError):
            return False
        return True

    def start_test(self, path: Path) -> None:
        self.sync()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._test = path.open("wb")

    def end_test(self) -> None:
        self.sync()
        with self._lock:
            if self._test is not None:
                self._test.close()
            self._test = None

    def close(self) -> None:
        self._thread.join(10)
        with self._lock:
            if self._test is not None:
                self._test.close()
                self._test = None
            self._all.close()


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker) -> Iterator[ServerLog]:  # type: ignore[no-untyped-def]
    """A daphne server (the production ASGI app, websockets included) on the test database."""
    with django_db_blocker.unblock():
        env = servers.child_env(PYTHONUNBUFFERED="1")
    ARTIFACTS.mkdir(exist_ok=True)
    port = servers.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "livecommerce.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    base = f"http://127.0.0.1:{port}"
    log = ServerLog(proc.stdout, ARTIFACTS / "server.log", base)
    try:
        servers.wait_for_http(base + "/healthz", proc)
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="session")
def live_url(daphne_server: ServerLog) -> str:
    return daphne_server.base_url


@pytest.fixture(autouse=True)
def _server_log_per_test(request: pytest.FixtureRequest, daphne_server: ServerLog) -> Iterator[None]:
    """This test's share of the server's output: test-artifacts/<test name>/server.log."""
    path = test_dir(request.node) / "server.log"
    request.node.stash[SERVER_LOG] = (daphne_server, path)
    daphne_server.start_test(path)
    yield
    daphne_server.end_test()


SERVER_LOG = pytest.StashKey[tuple[ServerLog, Path]]()
OPEN_CONTEXTS = pytest.StashKey[list[Any]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test shows what the server said meanwhile, and what the pages looked like."""
    report: pytest.TestReport = yield
    if report.failed and SERVER_LOG in item.stash:
        server, path = item.stash[SERVER_LOG]
        for i, ctx in enumerate(item.stash.get(OPEN_CONTEXTS, [])):
            for j, page in enumerate(ctx.pages):
                try:
                    page.screenshot(path=str(path.parent / f"failed-{report.when}-page{i}.{j}.png"), full_page=True)
                except Exception:  # noqa: BLE001 - a crashed page must not hide the failure itself
                    pass
        complete = server.sync()
        try:
            lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        except OSError:
            lines = []
        note = "" if complete else " (the server did not answer: its last lines may be missing)"
        report.sections.append(
            (f"server log, last {LOG_TAIL} lines of {path.relative_to(ROOT)}{note}", "\n".join(lines))
        )
    return report


@pytest.fixture(scope="module")
def browser(live_url: str) -> Iterator:  # type: ignore[type-arg]
    """Module-scoped: Playwright's sync API marks an event loop as running in this thread while it
    is open, which async tests elsewhere in the run must not meet. Depends on ``live_url`` so the
    test database exists before that loop does."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./test installs Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # The ORM calls the tests make between page steps (and the database flush after each test)
    # are plain synchronous calls, whatever loop Playwright keeps in this thread.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            from playwright.sync_api import expect

            expect.set_options(timeout=TIMEOUT_MS)  # waits on the page's state (default 5 s)
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield b
            b.close()


DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)


@pytest.fixture
def new_page(request, browser, live_url):  # type: ignore[no-untyped-def]
    """Open pages in fresh browser contexts (separate buyers); closed after the test, which then
    fails if any of its pages reported a Content-Security-Policy violation."""
    contexts: list[Any] = []
    pages: list[Any] = []
    request.node.stash[OPEN_CONTEXTS] = contexts  # screenshots when the test fails

    def make(*, locale: str = "zh-CN", viewport: dict | None = None, mobile: bool = False, js: bool = True):  # type: ignore[no-untyped-def]
        ctx = browser.new_context(
            base_url=live_url,
            locale=locale,
            timezone_id="Asia/Shanghai",
            viewport=viewport or {"width": 1280, "height": 900},
            device_scale_factor=2 if mobile else 1,
            is_mobile=mobile,
            has_touch=mobile,
            java_script_enabled=js,
            # These tests play people: headless Chromium's own user agent says "HeadlessChrome",
            # which the risk rules refuse at the storefront (apps/fraud/rules.py, headless_browser).
            user_agent=PHONE_UA if mobile else DESKTOP_UA,
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
        # A Content-Security-Policy violation breaks a page silently (a style or script just does
        # not apply); Chromium reports each one on the console.
        page.csp_violations = []  # type: ignore[attr-defined]
        page.on("console", lambda m: csp_violation(m.text) and page.csp_violations.append(m.text))  # type: ignore[attr-defined]
        pages.append(page)
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    violations = [v for page in pages for v in page.csp_violations]
    assert not violations, f"Content-Security-Policy violations on the pages of this test: {violations}"


def csp_violation(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the local test server
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
