"""`xsmoe up`: the whole stack on one machine, no Docker.

Redis (embedded `redis-server` under DATA_DIR/redis unless XSMOE_REDIS_URL is
set), a bootstrap snapshot if there is none, then the API and the worker as
child processes. Ctrl-C or SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx

from xsmoe import pipeline
from xsmoe.cli_args import Parser, UsageError, existing_file, port
from xsmoe.common.redis_url import redacted
from xsmoe.common.settings import Settings
from xsmoe.endpoints import remove_endpoints, write_endpoints
from xsmoe.model.data import ML100K
from xsmoe.redis_server import EmbeddedRedis

log = logging.getLogger(__name__)

# A laptop demo should see versions appear within minutes, not after 10,000 events.
DEMO_WORKER = {"XSMOE_WORKER__WINDOW_EVENTS": "3000", "XSMOE_WORKER__WINDOW_SECONDS": "120"}


def register(cmd: Parser) -> None:
    cmd.description = __doc__
    cmd.add_argument("--host", default="127.0.0.1", help="the API's address")
    cmd.add_argument("--port", type=port, default=8000, help="the API's TCP port (1..65535)")
    cmd.add_argument(
        "--dataset", choices=pipeline.DATASETS, default=ML100K, help="bootstrap from it if needed"
    )
    cmd.add_argument(
        "--catalog", type=existing_file, help="bootstrap from your own catalog (JSONL)"
    )
    cmd.add_argument(
        "--interactions", type=existing_file, help="... and its interactions (CSV or JSONL)"
    )
    cmd.add_argument("--no-worker", action="store_true", help="serve only")
    cmd.set_defaults(handler=run)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, procs: list[subprocess.Popen[bytes]], stop: threading.Event) -> bool:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not stop.is_set():
        if any(p.poll() is not None for p in procs):
            return False
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.model.snapshot_layout import current_version

    if not _port_free(args.host, args.port):
        raise UsageError(f"--port: port {args.port} on {args.host} is in use; pass another")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    embedded = None
    # A Redis set in the environment or the config file; otherwise one of our own.
    redis_url = settings.redis_url if "redis_url" in settings.model_fields_set else None
    if not redis_url:
        embedded = EmbeddedRedis(settings.data_dir.resolve() / "redis", persist=True).start()
        redis_url = embedded.url
    procs: list[subprocess.Popen[bytes]] = []
    data_dir = settings.data_dir.resolve()
    try:
        root: Path = settings.snapshots.resolve()
        if current_version(root) is None:
            source = args.catalog or args.dataset
            log.info("no snapshot in %s: bootstrapping from %s (a few minutes)", root, source)
            cmd = [sys.executable, "-m", "xsmoe", "bootstrap", "--out", str(root)]
            if args.catalog:
                cmd += ["--catalog", str(args.catalog)]
                cmd += ["--interactions", str(args.interactions)] if args.interactions else []
            else:
                cmd += ["--dataset", args.dataset]
            code = subprocess.run(cmd).returncode
            if code != 0:  # bootstrap said why on stderr
                log.error("bootstrap failed (exit %d); nothing started", code)
                return code
        env = {**DEMO_WORKER, **os.environ, "XSMOE_REDIS_URL": redis_url}
        env["XSMOE_SNAPSHOT_DIR"] = str(root)
        env["XSMOE_DATA_DIR"] = str(settings.data_dir.resolve())
        python = [sys.executable, "-m", "xsmoe"]
        serve = [*python, "serve", "--host", args.host, "--port", str(args.port)]
        procs.append(subprocess.Popen(serve, env=env))
        if not args.no_worker:
            procs.append(subprocess.Popen([*python, "worker"], env=env))
        url = f"http://{args.host}:{args.port}"
        if not _wait_ready(url, procs, stop):
            if stop.is_set():
                return 0
            log.error("the API did not become ready; see the log above")
            return 1
        found = write_endpoints(data_dir, redis_url, url)  # for `xsmoe snapshot`
        print(  # noqa: T201 - the command's own output
            f"\nxsmoe is up (Redis {redacted(redis_url)}{' embedded' if embedded else ''}, "
            f"snapshots {root}):\n"
            f"  API docs   {url}/docs\n"
            f"  dashboard  {url}/dashboard\n"
            f"  metrics    {url}/metrics\n"
            f"  replay     .venv/bin/xsmoe replay --dataset ml-100k --rate 200 --url {url}\n"
            f"  endpoints  {found} (what `xsmoe snapshot` reads)\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stop.wait(0.5):
            for proc in procs:
                if proc.poll() is not None:
                    log.error("%s exited with %s; stopping", proc.args, proc.returncode)
                    return 1
        return 0
    finally:
        remove_endpoints(data_dir)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if embedded is not None:
            embedded.stop()
        log.info("stopped")
