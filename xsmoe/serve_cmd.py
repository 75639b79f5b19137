"""`xsmoe serve`: the recommendation API (uvicorn, one process; scale with replicas)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xsmoe.cli_args import Parser, load_settings, port
from xsmoe.common.settings import Settings


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
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from xsmoe.service.app import create_app
    from xsmoe.service.server import server_config
    from xsmoe.service.settings import ServiceSettings

    service_settings = load_settings(ServiceSettings)
    if args.snapshot_dir is not None:
        service_settings = service_settings.model_copy(update={"snapshot_dir": args.snapshot_dir})
    app = create_app(service_settings)
    config = server_config(
        app, service_settings.api, host=args.host, port=args.port, access_log=args.access_log
    )
    uvicorn.Server(config).run()
    return 0
