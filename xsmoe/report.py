"""Render evaluation results: a markdown table and a picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xsmoe.model.metrics import METRICS


def combine_seeds(runs: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Mean over seeds of every figure; `avg_std` is the spread across seeds."""
    if len(runs) == 1:
        zero = dict.fromkeys(METRICS, 0.0)
        return {**runs[0], "seeds": seeds, "avg_std": zero, "avg_se": zero}

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    windows = []
    for per_seed in zip(*(r["windows"] for r in runs), strict=True):
        window = dict(per_seed[0])  # experts of the first seed
        for key in (*METRICS, "train_seconds", "epochs"):
            window[key] = mean([w[key] for w in per_seed])
        windows.append(window)
    return {
        "avg": {k: mean([r["avg"][k] for r in runs]) for k in METRICS},
        "avg_std": {k: float(np.std([r["avg"][k] for r in runs])) for k in METRICS},
        # standard error of the seed mean (sample std / sqrt(seeds))
        "avg_se": {
            k: float(np.std([r["avg"][k] for r in runs], ddof=1) / np.sqrt(len(runs)))
            for k in METRICS
        },
        **{
            part: {k: mean([r[part][k] for r in runs]) for k in ("hr@10", "ndcg@10")}
            | {"cases": runs[0][part]["cases"]}
            for part in ("cold", "warm")
            if part in runs[0]
        },
        "windows": windows,
        "per_seed_avg": [r["avg"] for r in runs],
        "seeds": seeds,
        **{
            k: mean([r[k] for r in runs])
            for k in ("train_seconds_per_window", "seconds_per_epoch", "peak_rss_mb")
        },
        **{k: runs[0][k] for k in ("trainable_params", "total_params")},
    }


def markdown(document: dict[str, Any]) -> str:
    variants: dict[str, Any] = document["variants"]
    lines = [
        f"Streaming evaluation on {document['dataset']}: "
        f"{document['protocol']['n_windows']} windows, train on t-1, test on t "
        "(averages over test windows; cold = targets first seen in their test window).",
        "",
        "| variant | HR@10 | NDCG@10 (± s.e. over seeds) | HR@20 | NDCG@20 | cold HR@10 "
        "| cold NDCG@10 | warm NDCG@10 "
        "| s/window | s/epoch | trainable params | total params | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in variants.items():
        a, c = r["avg"], r["cold"]
        warm = r.get("warm", {}).get("ndcg@10", float("nan"))
        lines.append(
            f"| {name} | {a['hr@10']:.4f} "
            f"| {a['ndcg@10']:.4f} ± {r.get('avg_se', r['avg_std'])['ndcg@10']:.4f} "
            f"| {a['hr@20']:.4f} "
            f"| {a['ndcg@20']:.4f} | {c['hr@10']:.4f} | {c['ndcg@10']:.4f} | {warm:.4f} "
            f"| {r['train_seconds_per_window']:.1f} | {r['seconds_per_epoch']:.2f} "
            f"| {r['trainable_params']:,} | {r['total_params']:,} | {r['peak_rss_mb']:.0f} |"
        )
    windows = {n: len(r["windows"]) for n, r in variants.items()}
    lines += [
        "",
        f"Test windows per variant: {windows}. Seeds: {document.get('seeds', [0])}. "
        f"Total time {document['seconds']} s.",
    ]
    if "xsmoe" in variants:
        lines += ["", "XSMoE experts per stage after each window:", ""]
        for w in variants["xsmoe"]["windows"]:
            lines.append(f"- window {w['window']}: {w['experts']}")
    return "\n".join(lines) + "\n"


def plot(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants: dict[str, Any] = document["variants"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in variants.items():
        xs = [w["window"] for w in r["windows"]]
        left.plot(xs, [w["ndcg@10"] for w in r["windows"]], marker="o", label=name)
    left.set(title="NDCG@10 per test window", xlabel="test window", ylabel="NDCG@10")
    left.legend()
    left.grid(alpha=0.3)
    xsmoe = variants.get("xsmoe")
    if xsmoe is not None:
        xs = [w["window"] for w in xsmoe["windows"]]
        for modality in xsmoe["windows"][0]["experts"]:
            n_stages = len(xsmoe["windows"][0]["experts"][modality])
            for s in range(n_stages):
                ys = [w["experts"][modality][s] for w in xsmoe["windows"]]
                right.plot(xs, ys, marker="s", label=f"{modality} stage {s + 1}")
        right.legend()
    right.set(title="XSMoE experts per stage (after training on window t-1)", xlabel="test window")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
