"""Where a running `xsmoe up` serves: DATA_DIR/run/up.json, written once its API is ready
and removed when it stops, so `xsmoe snapshot` finds the Redis it started on a random
port. It holds addresses only: never an API key, and no Redis URL with a password.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from xsmoe.common.redis_url import has_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    redis_url: str | None  # None: up was given a Redis URL with a password
    api_url: str
    pid: int


def endpoints_file(data_dir: Path) -> Path:
    return data_dir / "run" / "up.json"


def write_endpoints(data_dir: Path, redis_url: str, api_url: str) -> Path:
    path = endpoints_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = None if has_secret(redis_url) else redis_url
    body = {"redis_url": stored, "api_url": api_url, "pid": os.getpid()}
    tmp = path.with_suffix(".tmp")
    # owner-only, as a file of addresses on a shared machine should be
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)
    return path


def remove_endpoints(data_dir: Path) -> None:
    endpoints_file(data_dir).unlink(missing_ok=True)


def read_endpoints(data_dir: Path) -> Endpoints | None:
    """The endpoints of an `xsmoe up` that is still running, else None."""
    path = endpoints_file(data_dir)
    try:
        body = json.loads(path.read_text())
        found = Endpoints(body.get("redis_url"), str(body["api_url"]), int(body["pid"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); ignored", path, exc)
        return None
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        log.warning("%s names process %d, which has stopped; ignored", path, found.pid)
        return None
    except PermissionError:
        pass  # alive, another user's
    return found
