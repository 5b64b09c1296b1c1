"""Refresh-ahead for the process-memory caches the event loop reads (tokens, listings, risk
rules): a hit in the last part of its entry's life has the entry refreshed in the background,
once at a time per key, so a busy key never goes stale and no request waits for the shared cache
or the database."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

Spawn = Callable[[Callable[[], None]], object]
"""Runs a callable in the background (the order fast path's worker pool)."""


class RefreshAhead:
    """One cache's refreshes. ``forget(key)`` (the cache's invalidation calls it) bumps the key's
    generation: a refresh that read before it compares ``stamp(key)`` and keeps nothing."""

    def __init__(self, share: float) -> None:
        self.share = share  # the part of an entry's life in which a hit refreshes it
        self._busy: set[Hashable] = set()
        # Each forget takes the next tick; a key not forgotten since the last clearing reads as the
        # tick of that clearing (so a stamp taken before a clearing reads as changed: safe).
        self._generation: dict[Hashable, int] = {}
        self._clock = self._floor = 0

    def stamp(self, key: Hashable) -> int:
        return self._generation.get(key, self._floor)

    def forget(self, key: Hashable) -> None:
        if len(self._generation) > 100_000:
            self._generation.clear()
            self._floor = self._clock
        self._clock += 1
        self._generation[key] = self._clock

    def hit(
        self, key: Hashable, left: float, ttl: float, spawn: Spawn | None, refresh: Callable[[Any], object], arg: Any
    ) -> None:
        """A hit on ``key`` with ``left`` seconds of its ``ttl``: given ``spawn``, in the last
        ``share`` of its life, ``refresh(arg)`` runs through it, unless one for ``key`` already
        does. (Nothing is built for the hits that refresh nothing: the event loop makes them.)"""
        if spawn is None or left >= ttl * self.share or key in self._busy:
            return
        self._busy.add(key)

        def again() -> None:
            try:
                refresh(arg)
            finally:
                self._busy.discard(key)

        try:
            spawn(again)
        except Exception:  # noqa: BLE001 - no background to run it in (shutting down): the entry ages out
            self._busy.discard(key)
