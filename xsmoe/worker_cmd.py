"""`xsmoe worker`: continual training from the feedback stream (one leader at a time)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType

from xsmoe.cli_args import Parser, load_settings
from xsmoe.common.settings import Settings


def register(cmd: Parser) -> None:
    cmd.description = (
        "Settings XSMOE_WORKER__*: WINDOW_EVENTS, WINDOW_SECONDS, EPSILON, KEEP, ... "
        "(every one: docs/configuration.md)"
    )
    cmd.add_argument(
        "--snapshot-dir", type=Path, help="default XSMOE_SNAPSHOT_DIR or DATA_DIR/snapshots"
    )
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from xsmoe.workers.settings import WorkerSettings
    from xsmoe.workers.worker import Worker

    worker_settings = load_settings(WorkerSettings)
    if args.snapshot_dir is not None:
        worker_settings = worker_settings.model_copy(update={"snapshot_dir": args.snapshot_dir})
    worker = Worker(worker_settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    return 0
