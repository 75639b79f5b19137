"""Logging set-up for entrypoints (library code only gets loggers).

`XSMOE_LOG_FORMAT=json` writes one JSON object per line (ts, level, logger, msg,
request_id, exc, and the fields a call passes with `extra=`); the default `text`
writes one readable line. Either way every line logged while an API request is
handled carries its request id (set by the service's request-id middleware).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
from typing import IO, Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_suffix)s"

# The id of the API request being handled (None outside a request); each request runs
# in a task of its own, so the value never leaks into another request's lines.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xsmoe_request_id", default=None
)

# What a LogRecord carries by itself: everything else on it came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "request_suffix", "color_message",
}  # fmt: skip
# A key given as a query parameter (refused by the API, but the access line is written
# before that answer): its value never reaches a log.
_KEY_IN_QUERY = re.compile(r"(?i)((?:^|[?&])[\w-]*key=)[^&\s]*")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        record.request_id = rid
        record.request_suffix = f" [request {rid}]" if rid else ""
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            record.args = tuple(
                _KEY_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) and "=" in a else a
                for a in record.args
            )
        return True


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields: (client, method, path, http version, status)."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": path, "status": status}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        out.update(_access_fields(record))
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in out:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def log_format(value: str | None = None) -> str:
    """The format asked for (argument, else XSMOE_LOG_FORMAT, else text), checked."""
    chosen = (value or os.environ.get("XSMOE_LOG_FORMAT") or "text").strip().lower()
    if chosen not in FORMATS:
        raise ValueError(f"XSMOE_LOG_FORMAT={chosen!r}: use one of {', '.join(FORMATS)}")
    return chosen


def handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing `fmt` lines (to stderr unless told) with request ids."""
    out = logging.StreamHandler(stream)
    out.addFilter(RequestIdFilter())
    out.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return out


def setup_logging(level: str = "INFO", fmt: str | None = None) -> None:
    logging.basicConfig(level=level.upper(), handlers=[handler(log_format(fmt))])
    for chatty in ("httpx", "httpcore"):  # one line per request is noise in our logs
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # transformers prints progress bars and hub chatter of its own; keep ours only.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a hard dependency
        pass
