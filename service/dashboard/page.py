"""The operator's page: what serves, how it was gated, how the experts evolve, whether
feedback keeps up. Server-rendered HTML + SVG; refreshes itself every 5 seconds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from xsmoe.model.snapshot import MANIFEST, list_versions
from xsmoe.service.dashboard import svg
from xsmoe.service.dashboard.traffic import TrafficPoint

STYLE = """
body{font:14px system-ui,sans-serif;margin:24px;color:#111;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:18px} .ok{color:#16a34a} .bad{color:#dc2626}
.grid{stroke:#eee} .tick,.legend{font-size:10px;fill:#555} .title{font-size:12px;font-weight:600}
.note{font-size:12px;fill:#888} .charts{display:grid;grid-template-columns:repeat(auto-fill,
minmax(570px,1fr));gap:12px} svg{background:#fff;border:1px solid #ddd;border-radius:6px}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:3px 8px;
font-size:12px;text-align:left}
"""


@dataclass
class DashboardData:
    version: str
    manifest: dict[str, Any]
    items_indexed: int
    swaps: int
    windows: list[dict[str, Any]]  # ledger lines (the worker's windows), oldest first
    online: dict[str, dict[str, float]]
    lag: dict[str, int]
    traffic: list[TrafficPoint] = field(default_factory=list)


def manifests(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for version in list_versions(root):
        try:
            out[version] = json.loads((root / version / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
    return out


def _s(value: object) -> str:
    return escape(str(value))


def _cards(d: DashboardData) -> str:
    gate = d.manifest.get("gate") or {"outcome": "bootstrap", "reason": "first snapshot"}
    cls = "ok" if gate.get("outcome") in ("promoted", "bootstrap") else "bad"
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.manifest.get("created_at", 0)))
    online = d.online.get(d.version, {})
    cards = [
        ("serving", escape(d.version), f"parent {_s(d.manifest.get('parent'))}, {created}"),
        ("gate", f'<span class="{cls}">{escape(str(gate.get("outcome")))}</span>',
         escape(str(gate.get("reason", "")))),
        ("experts per stage", escape(json.dumps(d.manifest.get("experts", {}))), ""),
        ("online HR@10", f"{online.get('hr@10', 0):.3f}", f"over {online.get('n', 0):,.0f} clicks"),
        ("items indexed", f"{d.items_indexed:,}", f"{d.swaps} swaps by this replica"),
        ("feedback lag", f"{d.lag.get('lag', 0):,}", f"pending {d.lag.get('pending', 0):,}, "
         f"stream {d.lag.get('length', 0):,}, dead-lettered {d.lag.get('dead', 0):,}"),
    ]  # fmt: skip
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card">{escape(title)}<b>{value}</b><small>{detail}</small></div>'
            for title, value, detail in cards
        )
        + "</div>"
    )


def _quality(d: DashboardData) -> str:
    cand, serv, online = [], [], []
    for w in d.windows:
        gate = (w.get("metrics") or {}).get("gate") or {}
        n = float(w["window"])
        if gate:
            cand.append((n, float(gate["candidate"]["ndcg@10"])))
            serv.append((n, float(gate["serving"]["ndcg@10"])))
        if (w.get("online") or {}).get("cases"):
            online.append((n, float(w["online"]["hr@10"])))
    return svg.line_chart(
        "per window: held-out NDCG@10 (candidate vs serving) and online HR@10",
        {"candidate NDCG@10": cand, "serving NDCG@10": serv, "online HR@10": online},
        x_labels={float(w["window"]): f"w{w['window']}" for w in d.windows[-20:]},
        y_min=0.0,
    )


def _experts(d: DashboardData, snapshots: dict[str, dict[str, Any]]) -> str:
    columns: list[tuple[str, dict[str, list[int]]]] = []
    for version, manifest in snapshots.items():
        if not manifest.get("gate"):  # snapshots not made by the worker (bootstrap)
            columns.append((version, manifest.get("experts", {})))
    for w in d.windows:
        if w.get("experts"):
            mark = "" if w["outcome"] == "promoted" else " x"
            columns.append((f"{w['version']}{mark}", w["experts"]))
    columns = columns[-12:]
    series: dict[str, list[float]] = {}
    for _, experts in columns:
        for m, counts in experts.items():
            for s in range(len(counts)):
                series.setdefault(f"{m} stage {s + 1}", [])
    for name in series:
        m, _, stage = name.rpartition(" stage ")
        series[name] = [
            float(e.get(m, [])[int(stage) - 1]) if len(e.get(m, [])) >= int(stage) else 0.0
            for _, e in columns
        ]
    return svg.bar_chart(
        "experts per stage across versions (x = rejected)", [c for c, _ in columns], series
    )


def _utilization(d: DashboardData) -> str:
    util: dict[str, list[list[float]]] = d.manifest.get("utilization") or {}
    groups = [f"{m} stage {s + 1}" for m, stages in util.items() for s in range(len(stages))]
    rows = [shares for stages in util.values() for shares in stages]
    width = max((len(r) for r in rows), default=0)
    series = {
        ("backbone" if k == 0 else f"expert {k}"): [r[k] if k < len(r) else 0.0 for r in rows]
        for k in range(width)
    }
    title = f"utilization per expert in {d.version} (share of routed output)"
    return svg.bar_chart(title, groups, series)


def _traffic(d: DashboardData) -> str:
    t0 = d.traffic[0].at if d.traffic else 0.0
    rate = svg.line_chart(
        "requests/s (/v1 routes, this replica)",
        {"req/s": [(p.at - t0, p.rate) for p in d.traffic]},
        y_min=0.0,
    )
    latency = svg.line_chart(
        "mean latency ms (/v1 routes, this replica)",
        {"ms": [(p.at - t0, p.mean_ms) for p in d.traffic if p.rate > 0]},
        y_min=0.0,
    )
    return rate + latency


def _windows_table(d: DashboardData) -> str:
    rows = []
    for w in reversed(d.windows[-10:]):
        when = time.strftime("%H:%M:%S", time.localtime(w.get("created_at", 0)))
        rows.append(
            f"<tr><td>{w['window']}</td><td>{when}</td><td>{escape(str(w.get('version')))}</td>"
            f"<td>{escape(w['outcome'])}</td><td>{w.get('events', 0):,}</td>"
            f"<td>{escape(w.get('reason', ''))}</td></tr>"
        )
    names = ("window", "at", "version", "outcome", "events", "why")
    head = "<tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>no window closed yet</p>"


def render(d: DashboardData, snapshots: dict[str, dict[str, Any]]) -> str:
    charts = _quality(d) + _experts(d, snapshots) + _utilization(d) + _traffic(d)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>xsmoe dashboard · {escape(d.version)}</title><style>{STYLE}</style></head>
<body><h1>xsmoe</h1>
<form method="post" action="/dashboard/logout"><button type="submit">sign out</button></form>
{_cards(d)}
<h2>Model and traffic</h2><div class="charts">{charts}</div>
<h2>Recent windows</h2>{_windows_table(d)}
</body></html>"""
