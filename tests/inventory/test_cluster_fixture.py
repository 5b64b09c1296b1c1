"""The cluster fixture survives a port taken between its check and the server's bind."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from . import conftest


def test_a_node_whose_port_was_taken_makes_the_fixture_start_again_on_new_ports(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken_port = held.getsockname()[1]
    free_port = conftest._free_cluster_port
    handed_out: list[int] = []

    def first_one_taken(taken: set[int]) -> int:
        port = taken_port if not handed_out else free_port(taken)
        handed_out.append(port)
        return port

    monkeypatch.setattr(conftest, "_free_cluster_port", first_one_taken)
    fixture: Any = conftest.redis_cluster.__wrapped__  # type: ignore[attr-defined]
    started = fixture(tmp_path_factory)
    try:
        client = next(started)
        assert client.ping()
        assert taken_port not in [node.port for node in client.get_primaries()]
        assert len(handed_out) == 2 * conftest.CLUSTER_NODES  # one failed try, one that started
    finally:
        started.close()
        held.close()
