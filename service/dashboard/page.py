"""The operator's page: what serves, how it was gated, how the experts evolve, whether
feedback keeps up, what the worker is doing. Server-rendered HTML + SVG; refreshes
itself every 5 seconds. Every figure says what it is over; no figure is shown as
0 when nothing was measured."""

from __future__ import annotations

from html import escape
from typing import Any

from xsmoe.service.dashboard import svg
from xsmoe.service.dashboard.cards import cards
from xsmoe.service.dashboard.data import DashboardData, VersionTraffic, clock

STYLE = """
body{font:14px system-ui,sans-serif;margin:20px;color:#111;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
header{display:flex;justify-content:space-between;align-items:center}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(230px,100%),1fr));gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:18px;margin:2px 0} .card small{color:#555}
.ok{color:#16a34a} .bad{color:#dc2626} .warn{color:#b45309} .muted{color:#777}
.grid{stroke:#eee} .tick,.legend{font-size:11px;fill:#444} .title{font-size:13px;font-weight:600}
.note{font-size:12px;fill:#888}
.card b .muted{font-size:15px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(520px,100%),1fr));gap:12px}
svg.chart{display:block;width:100%;height:auto;background:#fff;border:1px solid #ddd;
border-radius:6px}
.tables{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(520px,100%),1fr));gap:12px;
align-items:start} section{overflow-x:auto}
table{border-collapse:collapse;background:#fff;width:100%} td,th{border:1px solid #ddd;
padding:3px 8px;font-size:12px;text-align:left} td.n,th.n{text-align:right}
"""


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
        x_labels={float(w["window"]): f"w{w['window']}" for w in d.windows[-40:]},
        y_min=0.0,
        empty_message="no window trained yet",
    )


def _experts_chart(d: DashboardData, snapshots: dict[str, dict[str, Any]]) -> str:
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
        "experts per stage across versions (x = rejected)",
        [c for c, _ in columns],
        series,
        integer=True,
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
    return svg.bar_chart(
        title,
        groups,
        series,
        fixed_colors={"backbone": svg.BACKBONE},
        empty_message="not measured: the worker measures it while training a version",
    )


def _traffic(d: DashboardData) -> str:
    rate = svg.line_chart(
        "requests/s on /v1 (this replica)",
        {
            "all": [(p.at, p.rate) for p in d.traffic],
            "5xx": [(p.at, p.errors) for p in d.traffic],
        },
        x_time=True,
        y_min=0.0,
        unit="req/s",
        empty_message="first sample in 5 s",
    )
    latency = svg.line_chart(
        "latency on /v1 (this replica, from the histogram)",
        {
            "p50": [(p.at, p.p50_ms) for p in d.traffic],
            "p99": [(p.at, p.p99_ms) for p in d.traffic],
        },
        x_time=True,
        y_min=0.0,
        unit="ms",
        empty_message="no request measured yet",
    )
    return rate + latency


def _table(names: tuple[str, ...], rows: list[list[str]], numeric: set[int], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th{' class=n' if i in numeric else ''}>{n}</th>" for i, n in enumerate(names))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def experts_table(d: DashboardData) -> str:
    rows = []
    experts: dict[str, list[int]] = d.manifest.get("experts") or {}
    for modality, counts in experts.items():
        frozen = d.frozen.get(modality, ())
        for s, n in enumerate(counts):
            f = frozen[s] if s < len(frozen) else 0
            rows.append([escape(modality), str(s + 1), str(n), str(f), str(n - f)])
    names = ("modality", "stage", "experts", "frozen", "trainable")
    return _table(names, rows, {1, 2, 3, 4}, "this snapshot has no experts")


def events_table(d: DashboardData) -> str:
    rows = []
    for e in d.model_events[:12]:
        cls = "ok" if e.outcome == "promoted" else "muted"
        rows.append(
            [
                clock(e.at),
                f'w{escape(e.window)}: {escape(e.version)} <span class="{cls}">'
                f"{escape(e.outcome)}</span>",
                f"{escape(e.modality)} stage {e.stage}",
                f"{escape(e.kind.replace('+', ' + '))}: {e.before} → {e.after} experts",
            ]
        )
    names = ("at (UTC)", "candidate", "where", "change")
    return _table(names, rows, set(), "no pruning or expansion yet")


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def versions_table(d: DashboardData) -> str:
    rows = []
    counted = {d.version: VersionTraffic(), **d.by_version}  # the serving one, even at 0
    for version, t in sorted(counted.items(), reverse=True):
        mark = " (serving)" if version == d.version else ""
        rows.append(
            [
                escape(version) + mark,
                f"{t.requests:,.0f}",
                f"{t.recommendations:,.0f}",
                _pct(t.fallbacks, t.recommendations),
                _pct(t.client_errors, t.requests),
                _pct(t.server_errors, t.requests),
            ]
        )
    names = ("version", "/v1 requests", "recommendations", "fallback", "4xx", "5xx")
    return _table(names, rows, {1, 2, 3, 4, 5}, "no /v1 request on this replica yet")


def windows_table(d: DashboardData) -> str:
    rows = []
    for w in reversed(d.windows[-10:]):
        rows.append(
            [
                str(w["window"]),
                clock(w.get("created_at")),
                escape(str(w.get("version") or "—")),
                escape(w["outcome"]),
                f"{w.get('events', 0):,}",
                escape(w.get("reason", "")),
            ]
        )
    names = ("window", "at (UTC)", "version", "outcome", "events", "why")
    return _table(names, rows, {0, 4}, "no window closed yet")


def render(d: DashboardData, snapshots: dict[str, dict[str, Any]]) -> str:
    charts = _quality(d) + _experts_chart(d, snapshots) + _utilization(d) + _traffic(d)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xsmoe dashboard · {escape(d.version)}</title><style>{STYLE}</style></head>
<body><header><h1>xsmoe</h1>
<form method="post" action="/dashboard/logout"><button type="submit">sign out</button></form>
</header>
{cards(d)}
<h2>Model and traffic</h2><div class="charts">{charts}</div>
<div class="tables">
<section><h2>Experts of {escape(d.version)}</h2>{experts_table(d)}</section>
<section><h2>Pruning and expansion (newest first)</h2>{events_table(d)}</section>
<section><h2>Traffic by version (this replica, since it started)</h2>{versions_table(d)}</section>
</div>
<section><h2>Recent windows</h2>{windows_table(d)}</section>
</body></html>"""
