"""``events.coalesced``: one push per window however many calls, across processes through a
short Redis token; a process that meets another's token asks Redis once per window, not once per
call, and never stays quiet past the token (the other process's push reads the state after)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from apps.core import events
from apps.core.redis import get_client
from tests.waiting import wait_until

KEY = "test-coalesced:1"
TOKEN = f"lc:push:{{{KEY}}}"


class Counting:
    """The Redis client, counting the round trips ``coalesced`` makes (one pipeline each)."""

    def __init__(self) -> None:
        self.client = get_client()
        self.questions = 0

    def pipeline(self, *a: Any, **kw: Any) -> Any:
        self.questions += 1
        return self.client.pipeline(*a, **kw)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    events._quiet_until.pop(KEY, None)
    c = Counting()
    monkeypatch.setattr(events, "get_client", lambda: c)
    return c


def _pushes() -> tuple[list[int], Any]:
    seen: list[int] = []

    def push(n: int) -> None:
        seen.append(n)

    return seen, push


def test_calls_while_another_process_holds_the_token_ask_redis_once(counting: Counting) -> None:
    get_client().set(TOKEN, "1", px=600)  # another process's push is due
    seen, push = _pushes()
    for n in range(50):
        events.coalesced(KEY, 300, push, n)
    assert counting.questions == 1
    # No timer here (the other process pushes), so nothing of this process's will run.
    assert KEY not in events._pending
    assert not [t for t in threading.enumerate() if t.name == f"{events.PUSH_THREAD_PREFIX}{KEY}"]
    assert seen == []


def test_the_quiet_ends_no_later_than_the_other_token(counting: Counting) -> None:
    get_client().set(TOKEN, "1", px=500)
    seen, push = _pushes()
    events.coalesced(KEY, 300, push, 1)
    after = time.monotonic()
    ttl_ms = get_client().pttl(TOKEN)
    assert 0 < ttl_ms <= 500
    # The token expires at ``after + ttl_ms`` at the earliest (PTTL read later, rounded): the
    # quiet must end by then.
    assert events._quiet_until[KEY] <= after + (ttl_ms + 1) / 1000
    wait_until(lambda: not get_client().exists(TOKEN), what="the other token to expire")
    wait_until(lambda: time.monotonic() >= events._quiet_until[KEY], what="the quiet to end")
    events.coalesced(KEY, 300, push, 2)  # now this process holds the token and pushes
    assert counting.questions == 2
    wait_until(lambda: seen == [2], what="this process's push")
    assert get_client().pttl(TOKEN) != -1  # the token carries its expiry


def test_calls_in_one_process_push_once(counting: Counting) -> None:
    seen, push = _pushes()
    for n in range(20):
        events.coalesced(KEY, 100, push, n)
    wait_until(lambda: seen, what="the push")
    assert seen == [0]
    assert counting.questions == 1


def test_without_redis_the_process_pushes_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    events._quiet_until.pop(KEY, None)

    class Gone:
        def pipeline(self, *a: Any, **kw: Any) -> Any:
            raise ConnectionError("redis is gone")

    monkeypatch.setattr(events, "get_client", lambda: Gone())
    seen, push = _pushes()
    events.coalesced(KEY, 50, push, 7)
    wait_until(lambda: seen == [7], what="the push without Redis")
