"""`xsmoe serve`: the recommendation API (uvicorn; `--workers N` processes share the port)."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from xsmoe.cli_args import Parser, UsageError, load_settings, port
from xsmoe.common.settings import Settings

log = logging.getLogger("xsmoe.serve")

# A worker gets uvicorn's graceful window (5 s) plus the app's own shutdown, then is killed.
STOP_SECONDS = 15.0


def register(cmd: Parser) -> None:
    cmd.description = (
        "Redis from XSMOE_REDIS_URL; keys from XSMOE_API__WRITE_KEY etc.; OpenAPI docs at /docs."
    )
    cmd.add_argument(
        "--snapshot-dir", type=Path, help="default XSMOE_SNAPSHOT_DIR or DATA_DIR/snapshots"
    )
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    cmd.add_argument("--port", type=port, default=8000, help="TCP port (1..65535)")
    cmd.add_argument("--access-log", action="store_true", help="log every request")
    cmd.add_argument(
        "--workers",
        type=int,
        help="API processes sharing the port, each with its own snapshot and /metrics "
        "(default XSMOE_API__WORKERS, 1)",
    )
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.service.settings import ServiceSettings

    workers = (
        args.workers if args.workers is not None else load_settings(ServiceSettings).api.workers
    )
    if not 1 <= workers <= 64:
        raise UsageError(f"--workers: {workers} is not in 1..64")
    if workers == 1:
        serve(None, args.snapshot_dir, args.host, args.port, args.access_log)
        return 0
    return supervise(
        workers, args, getattr(args, "log_level", None) or settings.log_level, settings
    )


def serve(
    sock: socket.socket | None, snapshot_dir: Path | None, host: str, port: int, access_log: bool
) -> None:
    """One API process: its own app, snapshot and swap watcher; on `sock` when given."""
    import uvicorn

    from xsmoe.service.app import create_app
    from xsmoe.service.server import ProcessHeader, server_config
    from xsmoe.service.settings import ServiceSettings

    service_settings = load_settings(ServiceSettings)
    if snapshot_dir is not None:
        service_settings = service_settings.model_copy(update={"snapshot_dir": snapshot_dir})
    app = create_app(service_settings)
    # one of several processes on the port: each response names its process
    served = app if sock is None else ProcessHeader(app)
    config = server_config(
        served, service_settings.api, host=host, port=port, access_log=access_log
    )
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)


def _worker(
    sock: socket.socket,
    serve_args: tuple[Path | None, str, int, bool],
    level: str,
    torch_threads: int | None,
) -> None:
    """A spawned process starts bare: the CLI's logging and torch threads again, then serve."""
    from xsmoe.cli import setup

    setup(level, True)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    serve(sock, *serve_args)


def supervise(workers: int, args: argparse.Namespace, level: str, settings: Settings) -> int:
    """N processes accepting on one listening socket bound here, so the port is refused
    at once if taken. A worker that dies stops the others: the host's supervisor (systemd,
    compose) restarts the whole service rather than this one hiding a crash loop."""
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    # spawn, not fork: the parent has imported torch, whose thread pools do not survive fork
    ctx = multiprocessing.get_context("spawn")
    serve_args = (args.snapshot_dir, args.host, args.port, args.access_log)
    procs: list[BaseProcess] = []
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            proc = ctx.Process(
                target=_worker,
                args=(sock, serve_args, level, settings.torch_threads),
                daemon=False,
            )
            proc.start()
            procs.append(proc)
        log.info(
            "serving on %s:%d with %d workers, pids %s (metrics are per process)",
            args.host,
            args.port,
            workers,
            [p.pid for p in procs],
        )
        failed = None
        while not stopping and failed is None:
            time.sleep(0.2)
            failed = next((p for p in procs if p.exitcode is not None), None)
        if failed is not None:
            log.error("worker %s exited with %s; stopping the others", failed.pid, failed.exitcode)
        return _stop(procs, 0 if failed is None else 1)
    finally:
        sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop(procs: list[BaseProcess], code: int) -> int:
    for proc in procs:
        if proc.exitcode is None:
            proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
    deadline = time.monotonic() + STOP_SECONDS
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.exitcode is None:
            log.warning("worker %s still running after %.0f s; killed", proc.pid, STOP_SECONDS)
            proc.kill()
            proc.join(5)
    return code
