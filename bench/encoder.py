"""The user encoder's serving cost, per call, variant against variant in one run.

Shipped shape (d=128, 2 blocks, 2 heads, max_len 10), random-init in eval mode,
histories of length 10 (some right-padded rows), batches of 1, 8 and 64:

  (a) full     forward() over every position, last row read (the path before)
  (b) last     UserEncoder.last_state: the last block queries one row only
  (c) jit      torch.jit.trace of (b) as serving runs it (model.user_encoder.serving_state)
  (d) onnx     ONNX Runtime on (b) exported, if onnxruntime is installed
  each with torch threads = 1 and the default; ratios are against (a) at the default.

Then the in-process serving path over the real bootstrap snapshot (when one
exists): Retriever.user_vectors, CatalogIndex.search and the two together, over
distinct histories drawn from the catalog.

    python bench/encoder.py [--calls N] [--snapshots DIR]

With --serve-workers 1 2: `xsmoe serve --workers N` over the bootstrap snapshot,
POST /v1/recommendations for distinct sessions (random ML-100k items, 10-30 long)
at c=1 and c=8, each against a bare async FastAPI endpoint measured in the same run.
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from xsmoe.common.settings import Settings
from xsmoe.model.retrieval import Retriever
from xsmoe.model.user_encoder import UserEncoder, UserEncoderConfig, serving_state

log = logging.getLogger("bench.encoder")
Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _Last(torch.nn.Module):
    def __init__(self, enc: UserEncoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.enc.last_state(items, valid)


def timed(fn: Callable[[], object], calls: int) -> np.ndarray:
    for _ in range(max(10, calls // 10)):  # warm-up: allocator, dispatch caches
        fn()
    out = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def variants(enc: UserEncoder, items: torch.Tensor, valid: torch.Tensor) -> dict[str, Fn]:
    def full(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return enc(x, v)[:, -1]

    out: dict[str, Fn] = {"full": full, "last": enc.last_state}
    traced = serving_state(enc)  # what serving runs: the trace, or last_state if it failed
    if isinstance(traced, torch.jit.ScriptModule):

        def jit(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return traced(x, v)

        out["jit"] = jit
    else:
        log.warning("torch.jit.trace failed: serving runs last_state")
    try:
        import onnxruntime as ort

        buf = io.BytesIO()
        torch.onnx.export(
            _Last(enc).eval(), (items, valid), buf, dynamo=False, opset_version=17,
            input_names=["items", "valid"], output_names=["state"],
            dynamic_axes={"items": {0: "b"}, "valid": {0: "b"}, "state": {0: "b"}},
        )  # fmt: skip
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

        def onnx(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            res = session.run(None, {"items": x.numpy(), "valid": v.numpy()})
            return torch.from_numpy(res[0])

        out["onnx"] = onnx
    except Exception as exc:
        log.warning("ONNX Runtime unavailable or export failed: %s", str(exc).splitlines()[0])
    return out


def encoder_table(calls: int) -> None:
    torch.manual_seed(0)
    config = UserEncoderConfig()
    enc = UserEncoder(config).eval()
    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, default threads {default_threads}, d={config.dim}, "
          f"{config.n_blocks} blocks, {config.n_heads} heads, T={config.max_len}")  # fmt: skip
    print("| batch | variant | threads | median ms | p99 ms | median vs (a) default | max diff |")
    print("|---|---|---|---|---|---|---|")
    for batch in (1, 8, 64):
        gen = torch.Generator().manual_seed(batch)
        items = torch.randn(batch, config.max_len, config.dim, generator=gen)
        lengths = torch.randint(1, config.max_len + 1, (batch,), generator=gen)
        lengths[0] = config.max_len  # the measured shape: length-10 histories, some shorter
        valid = torch.arange(config.max_len).unsqueeze(0) >= (config.max_len - lengths)[:, None]
        items = items * valid.unsqueeze(-1)
        floor: float | None = None
        for threads in (default_threads, 1):
            torch.set_num_threads(threads)
            fns = variants(enc, items, valid)
            reference = fns["full"](items, valid)
            for name, fn in fns.items():
                diff = (fn(items, valid) - reference).abs().max().item()
                ms = timed(functools.partial(fn, items, valid), calls)
                med = float(np.median(ms))
                floor = med if floor is None else floor
                print(
                    f"| {batch} | {name} | {threads} | {med:.3f} | "
                    f"{np.percentile(ms, 99):.3f} | {med / floor:.2f}x | {diff:.1e} |"
                )
        torch.set_num_threads(default_threads)


def serving_path(calls: int, root: Path) -> None:
    import faiss

    from xsmoe.model.snapshot import current_version, load_snapshot

    version = current_version(root)
    if version is None:
        print(f"\nno snapshot in {root}: serving path not measured")
        return
    faiss.omp_set_num_threads(1)  # as the service runs it (XSMOE_SERVING__THREADS=1)
    torch.set_num_threads(1)
    snapshot = load_snapshot(root / version)
    retriever = Retriever.from_snapshot(snapshot)
    retriever.model.eval()
    n = len(snapshot.item_ids)
    rng = np.random.default_rng(0)
    max_len = retriever.model.config.user.max_len
    print(f"\nserving path in-process, snapshot {version} ({n:,} items), distinct histories")
    print("| batch | step | median ms | p99 ms | per user ms |")
    print("|---|---|---|---|---|")
    for batch in (1, 8, 64):
        histories = [
            [[int(r) for r in rng.choice(n, rng.integers(1, max_len + 1), replace=False)]
             for _ in range(batch)]
            for _ in range(calls)
        ]  # fmt: skip
        serving_batch(retriever, histories, batch, calls)


def serving_batch(
    retriever: Retriever, histories: list[list[list[int]]], batch: int, calls: int
) -> None:
    it = iter(range(10**9))

    def vectors() -> np.ndarray:
        return retriever.user_vectors(histories[next(it) % calls])

    vecs = retriever.user_vectors(histories[0])

    def search() -> None:
        for b, v in enumerate(vecs):
            retriever.catalog.search(v, 10, histories[0][b])

    def both() -> None:
        h = histories[next(it) % calls]
        for b, v in enumerate(retriever.user_vectors(h)):
            retriever.catalog.search(v, 10, h[b])

    def rows() -> None:
        for h in histories[next(it) % calls]:
            retriever.catalog.vectors(h)

    for name, fn in (("catalog.vectors (rows)", rows), ("user_vectors", vectors),
                     ("search x batch", search), ("user_vectors + search", both)):  # fmt: skip
        ms = timed(fn, calls)
        med = float(np.median(ms))
        print(f"| {batch} | {name} | {med:.3f} | {np.percentile(ms, 99):.3f} | {med / batch:.3f} |")


def serve_workers(counts: list[int], root: Path, seconds: float) -> None:
    import shutil
    import subprocess
    import tempfile

    from bench import _loadgen as loadgen
    from bench.serve import start
    from xsmoe.model.snapshot import current_version, set_current
    from xsmoe.redis_server import EmbeddedRedis, free_port

    version = current_version(root)
    if version is None:
        print(f"no snapshot in {root}: serve not measured")
        return
    work = Path(tempfile.mkdtemp(prefix="xsmoe-bench-enc-"))
    (work / "snapshots").mkdir()
    shutil.copytree(root / version, work / "snapshots" / version)
    set_current(work / "snapshots", version)
    ids = json_ids(root / version)
    rng = np.random.default_rng(0)
    sessions = [
        loadgen.Call(
            "POST",
            "/v1/recommendations",
            {
                "item_ids": [ids[j] for j in rng.integers(0, len(ids), rng.integers(10, 31))],
                "k": 10,
            },
        )
        for _ in range(20_000)
    ]
    print(f"\nxsmoe serve --workers N, generator {loadgen.generator()}, {seconds:g} s a phase, "
          f"{len(sessions):,} distinct sessions")  # fmt: skip
    print("| workers | c | req/s | p50 ms | p99 ms | errors | bare req/s | vs bare |")
    print("|---|---|---|---|---|---|---|---|")
    procs: list[subprocess.Popen[bytes]] = []
    with EmbeddedRedis(work / "redis", persist=False) as server:
        bare_port = free_port()
        bare = f"http://127.0.0.1:{bare_port}"
        bare_cmd = [sys.executable, str(Path(__file__).with_name("_bare_app.py")), str(bare_port)]
        here = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        procs.append(start(bare_cmd, here, f"{bare}/docs", work / "bare.log"))
        try:
            for n in counts:
                port = free_port()
                api = f"http://127.0.0.1:{port}"
                env = {
                    "XSMOE_REDIS_URL": server.url,
                    "XSMOE_REDIS_PREFIX": f"bench{n}",
                    "XSMOE_SNAPSHOT_DIR": str(work / "snapshots"),
                    "XSMOE_LOG_LEVEL": "WARNING",
                }
                cmd = [sys.executable, "-m", "xsmoe", "serve", "--port", str(port)]
                proc = start([*cmd, "--workers", str(n)], env, f"{api}/readyz", work / "s.log")
                try:
                    loadgen.run(api, sessions, 8, 3)  # every process warm
                    loadgen.run(bare, sessions, 8, 2)
                    for c in (1, 8):
                        b = loadgen.run(bare, sessions, c, seconds)
                        r = loadgen.run(api, sessions, c, seconds)
                        print(
                            f"| {n} | {c} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                            f"{r.errors} | {b.rps:,.0f} | {r.rps / b.rps:.2f}x |"
                        )
                finally:
                    proc.terminate()
                    proc.wait(30)
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)
            shutil.rmtree(work, ignore_errors=True)


def json_ids(snapshot: Path) -> list[str]:
    from xsmoe.model.snapshot import load_snapshot

    return list(load_snapshot(snapshot).item_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--snapshots", type=Path, default=Settings().snapshots)
    parser.add_argument("--serve-workers", type=int, nargs="*", help="measure serve --workers")
    parser.add_argument("--seconds", type=float, default=8.0, help="per serve phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve_workers:
        serve_workers(args.serve_workers, args.snapshots, args.seconds)
        return
    encoder_table(args.calls)
    serving_path(min(args.calls, 1000), args.snapshots)


if __name__ == "__main__":
    main()
