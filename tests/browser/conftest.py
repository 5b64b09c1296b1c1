"""Browser tests: real headless Chromium (Debian's, not a Playwright download) against a real daphne
server started here on a free port, on the test database of this pytest process (the SQLite test
file, or the PostgreSQL test database) and the same Redis. Screenshots go to
test-artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import servers

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


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A daphne server (the production ASGI app, websockets included) on the test database."""
    with django_db_blocker.unblock():
        env = servers.child_env(PYTHONUNBUFFERED="1")
    ARTIFACTS.mkdir(exist_ok=True)
    port = servers.free_port()
    log = open(ARTIFACTS / "daphne.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "livecommerce.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        servers.wait_for_http(base + "/healthz", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


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
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield b
            b.close()


@pytest.fixture
def new_page(browser, live_url):  # type: ignore[no-untyped-def]
    """Open pages in fresh browser contexts (separate buyers); closed after the test, which then
    fails if any of its pages reported a Content-Security-Policy violation."""

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
        )
        ctx.set_default_timeout(10_000)
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

    contexts: list = []
    pages: list = []
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
