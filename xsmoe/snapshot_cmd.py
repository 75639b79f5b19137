"""`xsmoe snapshot list | promote V | rollback V`: look at and move the serving pointer."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common.settings import Settings
from model.snapshot import MANIFEST, SnapshotError, current_version, list_versions, set_current
from workers import redis_client


def register(commands: Any) -> None:
    cmd = commands.add_parser("snapshot", help="list snapshots, promote or roll back one")
    cmd.add_argument(
        "--snapshot-dir", type=Path, help="default XSMOE_SNAPSHOT_DIR or var/snapshots"
    )
    sub = cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="versions, lineage, gate outcome, experts, metrics")
    for name, text in (
        ("promote", "serve V even though the gate rejected it (operator override)"),
        ("rollback", "serve an earlier version V"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("version")
    cmd.set_defaults(handler=run)


def _current(root: Path) -> str | None:
    """The current version, or None where CURRENT names none (listing and rolling
    back are how an operator repairs such a pointer)."""
    try:
        return current_version(root)
    except SnapshotError as exc:
        print(f"warning: {exc}", file=sys.stderr)  # noqa: T201
        return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    root: Path = args.snapshot_dir or settings.snapshots
    if args.action == "list":
        current = _current(root)
        print("   version  parent   created              gate       experts          NDCG@10")  # noqa: T201
        for version in list_versions(root):
            m: dict[str, Any] = json.loads((root / version / MANIFEST).read_text())
            gate = m.get("gate", {}).get("outcome", "-")
            ndcg = m.get("metrics", {}).get("gate", {}).get("candidate", {}).get("ndcg@10")
            ndcg = ndcg if ndcg is not None else m.get("metrics", {}).get("val_ndcg@10")
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.get("created_at", 0)))
            mark = "*" if version == current else " "
            print(  # noqa: T201
                f"{mark}  {version}  {m.get('parent') or '-':8} {created}  {gate:9}  "
                f"{json.dumps(m.get('experts', {})):15}  "
                f"{ndcg if ndcg is None else round(float(ndcg), 4)}"
            )
        return 0
    if args.version not in list_versions(root):
        raise SnapshotError(f"no snapshot {args.version} in {root}")
    previous = _current(root)
    set_current(root, args.version)
    try:
        client = redis_client.connect(settings.redis_url, socket_connect_timeout=2)
        keys = settings.keys
        client.set(keys.snapshot_pointer, args.version)
        client.publish(keys.snapshot_channel, args.version)
        told = "announced on Redis"
    except redis_client.REDIS_ERRORS as exc:
        told = f"not announced ({exc}); API replicas pick it up by polling"
    print(f"{args.action}: CURRENT {previous} -> {args.version}; {told}")  # noqa: T201
    return 0
