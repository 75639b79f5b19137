"""HTTP load generation: wrk (Debian's) when installed, else an async httpx loop.

Both report the same figures: requests/s, latency percentiles, errors.

Requests are distinct across runs too: each run on a list of calls starts where
the previous run on that list stopped, and concurrent connections interleave
(no two send the same call), so a later phase never replays what an earlier one
sent (a replay would measure the service's caches) until the list wraps.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class LoadResult:
    tool: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "httpx"


# id(calls) -> (calls, where the next run starts); the list is kept so its id stays its own
_NEXT: dict[int, tuple[list[Call], int]] = {}


def run(base_url: str, calls: list[Call], concurrency: int, seconds: float) -> LoadResult:
    """Send `calls` in order, from where the last run on them stopped, at a fixed
    concurrency for `seconds`."""
    start = _NEXT.get(id(calls), (calls, 0))[1]
    if generator() == "wrk":
        result = _wrk(base_url, calls, concurrency, seconds, start)
    else:
        result = asyncio.run(_httpx(base_url, calls, concurrency, seconds, start))
    _NEXT[id(calls)] = (calls, (start + result.requests) % max(len(calls), 1))
    return result


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"unparsed wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _wrk(
    base_url: str, calls: list[Call], concurrency: int, seconds: float, start: int
) -> LoadResult:
    threads = min(concurrency, 2)
    # The calls are read from a file, one per line: a Lua chunk holds at most 65,536
    # constants, so a table written into the script breaks silently past ~20,000 calls.
    lines = "".join(
        f"{c.method}\t{c.path}\t{json.dumps(c.body) if c.body is not None else ''}\n" for c in calls
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "calls.tsv"
        data.write_text(lines)
        script = f"""
local calls = {{}}
for line in io.lines({_lua_string(str(data))}) do
  local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  calls[#calls + 1] = {{method, path, body ~= "" and body or nil}}
end
local headers = {{["Content-Type"] = "application/json"}}
local threads, made = {threads}, 0
setup = function(thread)  -- runs once per thread, in the main state
  thread:set("tid", made)
  made = made + 1
end
local n = nil
request = function()  -- thread t sends calls start + t, start + t + threads, ...
  n = n and n + threads or {start} + tid
  local c = calls[(n % #calls) + 1]
  return wrk.format(c[1], c[2], headers, c[3])
end
"""
        lua = Path(tmp) / "calls.lua"
        lua.write_text(script)
        cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
        out = subprocess.run(
            [*cmd, "-s", str(lua), base_url], capture_output=True, text=True, check=True
        ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return LoadResult("wrk", concurrency, seconds, requests, errors, rps, p50, p99)


async def _httpx(
    base_url: str, calls: list[Call], concurrency: int, seconds: float, start: int
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < deadline:
                n += concurrency
                call = calls[n % len(calls)]
                start = time.perf_counter()
                try:
                    r = await client.request(call.method, call.path, json=call.body)
                    ok = r.status_code < 400
                except httpx.TransportError:
                    ok = False
                latencies.append((time.perf_counter() - start) * 1e3)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(worker(start + i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    lat = np.asarray(latencies)
    return LoadResult(
        "httpx",
        concurrency,
        elapsed,
        len(lat),
        errors,
        len(lat) / elapsed,
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
    )
