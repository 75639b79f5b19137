"""HTTP load generation: wrk (Debian's) when installed, else an async httpx loop.

Both report the same figures: requests/s, latency percentiles, errors.

No request repeats until the list of calls wraps, within a load and across loads:
  - within a load, concurrent senders interleave (wrk thread or httpx worker t of
    T sends calls start + t, start + t + T, ...), so no two send the same call;
  - across loads, each load on a list starts where the previous one on that same
    list stopped (a background load too, stopped early or not), so a later phase
    never replays what an earlier one sent (a replay would measure the service's
    caches). Loads on one list are meant to run one after another, not at once.
    A load that ends without figures leaves the offset where it was: stopped
    before wrk began it sent nothing; a wrk that hung and was killed may have.

`run` waits for its load; `start` runs it in the background (a wrk process the
caller holds, so a `finally` can `stop()` it), and `run` is `start(...).result()`.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
# How long past its own duration a load may take before it counts as hung.
_GRACE_S = 60.0
# How long wrk gets to print its figures after SIGINT before it is terminated.
_STOP_S = 5.0


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


# id(calls) -> (calls, where the next load starts); the list is kept so its id stays its own
_NEXT: dict[int, tuple[list[Call], int]] = {}


def _advance(calls: list[Call], start: int, sent: int) -> None:
    _NEXT[id(calls)] = (calls, (start + sent) % max(len(calls), 1))


class Load:
    """A load run in the background: `result()` waits for it, `stop()` ends it early."""

    def __init__(self, base_url: str, calls: list[Call], concurrency: int, seconds: float):
        self.concurrency, self.seconds = concurrency, seconds
        self._calls = calls
        self._start = _NEXT.get(id(calls), (calls, 0))[1]
        self._began = time.monotonic()
        self._result: LoadResult | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._ended = False  # its figures were read, or the attempt failed
        self._tmp = Path(tempfile.mkdtemp(prefix="xsmoe-bench-load-"))
        if generator() != "wrk":
            self._thread = threading.Thread(target=self._run_httpx, args=(base_url,), daemon=True)
            self._thread.start()
            return
        threads = min(concurrency, 2)
        # The calls are read from a file, one per line: a Lua chunk holds at most 65,536
        # constants, so a table written into the script breaks silently past ~20,000 calls.
        data = self._tmp / "calls.tsv"
        data.write_text(
            "".join(
                f"{c.method}\t{c.path}\t{json.dumps(c.body) if c.body is not None else ''}\n"
                for c in calls
            )
        )
        lua = self._tmp / "calls.lua"
        lua.write_text(_script(data, threads, self._start))
        cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--latency"]
        self._proc = subprocess.Popen(
            [*cmd, "-s", str(lua), base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def result(self) -> LoadResult:
        """Wait for the load (at most its duration and a grace) and return its figures."""
        try:
            if self._result is None:
                if self._ended:
                    raise RuntimeError("the load was stopped before it reported its figures")
                self._result = self._finish(self.seconds + _GRACE_S)
            return self._result
        finally:
            self.stop()

    def stop(self) -> None:
        """End the load now if it still runs; safe to call again and after `result()`."""
        try:
            if self._result is None and not self._ended:
                self._halt.set()
                if self._proc is not None:
                    self._interrupt(self._proc)
                self._result = self._finish(_STOP_S)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired):
            pass  # a stopped load reports what it can; one killed mid-way has no figures
        finally:
            self._ended = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=10)
            shutil.rmtree(self._tmp, ignore_errors=True)

    @staticmethod
    def _interrupt(proc: subprocess.Popen[str]) -> None:
        # wrk stops on SIGINT and still prints its figures; it ignores SIGINT while it
        # starts its threads, so the signal is sent again until it exits.
        deadline = time.monotonic() + _STOP_S
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.terminate()

    def _finish(self, timeout: float) -> LoadResult:
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._result is None:
                raise RuntimeError("the httpx load did not finish")
            return self._result
        assert self._proc is not None
        out, _ = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            raise RuntimeError(f"wrk exited with {self._proc.returncode}:\n{out}")
        ran_out = not self._halt.is_set()
        seconds = self.seconds if ran_out else time.monotonic() - self._began
        result, sent = _parse(out, self.concurrency, seconds, self._start)
        _advance(self._calls, self._start, sent)
        return result

    def _run_httpx(self, base_url: str) -> None:
        result, sent = asyncio.run(
            _httpx(base_url, self._calls, self.concurrency, self.seconds, self._start, self._halt)
        )
        _advance(self._calls, self._start, sent)
        self._result = result


def start(base_url: str, calls: list[Call], concurrency: int, seconds: float) -> Load:
    """Send `calls` in order, from where the last load on them stopped, at a fixed
    concurrency for `seconds`, in the background."""
    return Load(base_url, calls, concurrency, seconds)


def run(base_url: str, calls: list[Call], concurrency: int, seconds: float) -> LoadResult:
    """Like `start`, and wait for it."""
    return start(base_url, calls, concurrency, seconds).result()


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _script(data: Path, threads: int, start: int) -> str:
    # done() prints the next unsent call: threads may send unequal counts, so
    # start + requests could land inside what the faster thread already sent.
    return f"""
local calls = {{}}
for line in io.lines({_lua_string(str(data))}) do
  local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  calls[#calls + 1] = {{method, path, body ~= "" and body or nil}}
end
local headers = {{["Content-Type"] = "application/json"}}
local threads, made = {threads}, {{}}
setup = function(thread)  -- runs once per thread, in the main state
  thread:set("tid", #made)
  made[#made + 1] = thread
end
n = nil  -- a global: done() reads it through thread:get
request = function()  -- thread t sends calls start + t, start + t + threads, ...
  n = n and n + threads or {start} + tid
  local c = calls[(n % #calls) + 1]
  return wrk.format(c[1], c[2], headers, c[3])
end
done = function(summary, latency, requests)
  local upto = {start}
  for _, thread in ipairs(made) do
    local last = thread:get("n")
    if last and last + 1 > upto then upto = last + 1 end
  end
  io.write(string.format("next call: %d\\n", upto))
end
"""


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"unparsed wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _parse(out: str, concurrency: int, seconds: float, start: int) -> tuple[LoadResult, int]:
    """wrk's figures and how many calls past `start` the next load must begin."""

    def find(pattern: str) -> str:
        m = re.search(pattern, out)
        if m is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{out}")
        return m.group(1)

    requests = int(find(r"(\d+) requests in"))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"next call: (\d+)", out)
    sent = int(m.group(1)) - start if m else requests
    result = LoadResult(
        "wrk",
        concurrency,
        seconds,
        requests,
        errors,
        float(find(r"Requests/sec:\s+([\d.]+)")),
        _ms(find(r"\s50%\s+(\S+)")),
        _ms(find(r"\s99%\s+(\S+)")),
    )
    return result, sent


async def _httpx(
    base_url: str,
    calls: list[Call],
    concurrency: int,
    seconds: float,
    start: int,
    halt: threading.Event,
) -> tuple[LoadResult, int]:
    """The figures and how many calls past `start` the next load must begin."""
    latencies: list[float] = []
    errors, sent = 0, 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        deadline = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            nonlocal errors, sent
            while time.perf_counter() < deadline and not halt.is_set():
                call = calls[n % len(calls)]
                sent = max(sent, n + 1 - start)
                n += concurrency
                sent_at = time.perf_counter()
                try:
                    r = await client.request(call.method, call.path, json=call.body)
                    ok = r.status_code < 400
                except httpx.TransportError:
                    ok = False
                latencies.append((time.perf_counter() - sent_at) * 1e3)
                errors += not ok

        began = time.perf_counter()
        await asyncio.gather(*(worker(start + i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    result = LoadResult(
        "httpx",
        concurrency,
        elapsed,
        len(latencies),
        errors,
        len(latencies) / elapsed,
        float(np.percentile(lat, 50)),
        float(np.percentile(lat, 99)),
    )
    return result, sent
