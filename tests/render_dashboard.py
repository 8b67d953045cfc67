"""Renders the shipped Grafana dashboard's panels from a real Prometheus's query results as
one HTML page of SVG line charts, then screenshots it with headless Chromium. Grafana is not
in Debian, so this is how the README's dashboard picture is made (see the README)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from html import escape
from pathlib import Path

import httpx

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
W, H = 520, 170


def _legend(fmt: str, labels: dict[str, str]) -> str:
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    return out


Points = list[tuple[float, float]]


def _series(prom: str, expr: str, start: float, end: float) -> list[tuple[dict[str, str], Points]]:
    r = httpx.get(
        f"{prom}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": 1},
        timeout=10,
    ).json()
    out = []
    for s in r["data"]["result"]:
        points = [(float(t), float(v)) for t, v in s["values"] if v not in ("NaN", "+Inf")]
        if points:
            out.append((s["metric"], points))
    return out


def _chart(title: str, lines: list[tuple[str, list[tuple[float, float]]]]) -> str:
    xs = [x for _, pts in lines for x, _ in pts] or [0.0, 1.0]
    ys = [y for _, pts in lines for _, y in pts] or [0.0, 1.0]
    x0, x1, y1 = min(xs), max(xs) or 1, max(ys) or 1.0
    x1 = x1 if x1 > x0 else x0 + 1
    paths, keys = [], []
    lines = sorted(lines, key=lambda line: -max(y for _, y in line[1]))  # busiest first
    for i, (name, pts) in enumerate(lines[:7]):
        c = COLORS[i % len(COLORS)]
        d = " ".join(f"{(x - x0) / (x1 - x0) * W:.1f},{H - y / y1 * H:.1f}" for x, y in pts)
        paths.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{d}"/>')
        keys.append(f'<span style="color:{c}">■</span> {escape(name)}')
    return (
        f'<div class="panel"><h3>{escape(title)}</h3><span class="max">max {y1:.4g}</span>'
        f'<svg width="{W}" height="{H}">{"".join(paths)}</svg>'
        f'<div class="keys">{" &nbsp; ".join(keys)}</div></div>'
    )


def render(prom: str, dashboard: Path, png: Path, seconds: float = 30) -> None:
    end = time.time()
    panels = json.loads(dashboard.read_text())["panels"]
    charts = []
    for p in panels:
        lines = []
        for t in p["targets"]:
            for labels, pts in _series(prom, t["expr"], end - seconds, end):
                lines.append((_legend(t["legendFormat"], labels), pts))
        charts.append(_chart(p["title"], lines))
    html = (
        "<!doctype html><meta charset=utf-8><style>body{font:12px system-ui;margin:10px;"
        "background:#111217;color:#ccccdc}.panel{display:inline-block;vertical-align:top;"
        "background:#181b1f;border:1px solid #2c3235;margin:4px;padding:6px;width:532px}"
        "h3{margin:0 0 4px;font-size:13px}.max{float:right;color:#8e8e8e}"
        ".keys{font-size:11px;margin-top:4px}</style>" + "".join(charts)
    )
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "dashboard.html"
        page.write_text(html)
        chromium = shutil.which("chromium")
        assert chromium is not None
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={folder}/c",
             f"--screenshot={png}", "--window-size=1200,1780", page.as_uri()],
            capture_output=True, timeout=90, check=True,
        )  # fmt: skip
