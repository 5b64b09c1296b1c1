"""API token keys and this process's cache of resolved tokens (shared by authentication and
the services that revoke tokens)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from typing import Any

local_tokens: dict[str, tuple[float, Any]] = {}
"""key hash -> (monotonic expiry, principal): a valid token, kept ``TOKEN_LOCAL_CACHE_SECONDS``."""
local_tokens_lock = threading.Lock()
LOCAL_MAX = 10_000


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_cache_key(key_hash: str) -> str:
    return f"token:{key_hash}"


def forget_local(key_hashes: Iterable[str]) -> None:
    """Drop tokens from this process's cache (revoke, merchant deactivation)."""
    with local_tokens_lock:
        for h in key_hashes:
            local_tokens.pop(h, None)
