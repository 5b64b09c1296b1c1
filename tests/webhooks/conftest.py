from __future__ import annotations

import pytest

from . import receiver as receiver_module


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = receiver_module.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
