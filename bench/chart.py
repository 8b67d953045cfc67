"""The PNG chart of a result (matplotlib, Agg backend; skipped when matplotlib is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import Result, find, served

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _label(target: str, surface: str) -> str:
    return target if target == surface else f"{target}/{surface}"


def _bars(
    ax: Any, groups: list[str], series: dict[str, list[float | None]], log_if_wide: bool = False
) -> None:
    series = {name: values for name, values in series.items() if any(v is not None for v in values)}
    if not series:
        ax.text(0.5, 0.5, "no figures", ha="center", va="center", transform=ax.transAxes)
        return
    positive = [v for values in series.values() for v in values if v is not None and v > 0]
    if log_if_wide and positive and max(positive) > 20 * min(positive):
        ax.set_yscale("log")
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, color=COLOURS[i % len(COLOURS)])
        for bar, value in zip(bars, values, strict=True):
            if value is not None:
                ax.annotate(
                    f"{value:.3g}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.legend(fontsize=7)


def _cpu(ax: Any, result: Result) -> None:
    settings = result["settings"]
    cells = [
        ("json", max(settings["json_concurrency"], default=0)),
        ("stream", max(settings["stream_concurrency"], default=0)),
    ]
    series = {
        _label(t, s): [(find(result, t, s, m, c) or {}).get("cpu_ms_per_req") for m, c in cells]
        for t, s in served(result)
    }
    _bars(ax, [f"{m} c={c}" for m, c in cells], series, log_if_wide=True)
    for limit, x in ((0.4, 0), (1.0, 1)):
        ax.hlines(limit, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.set_title("server CPU ms per request (dashed: target)", fontsize=9)


def _added(ax: Any, result: Result) -> None:
    settings = result["settings"]
    cells = [("json", c) for c in settings["json_concurrency"]]
    cells += [("stream", c) for c in settings["stream_concurrency"]]
    series = {}
    for t, s in served(result):
        series[_label(t, s)] = [
            ((find(result, t, s, m, c) or {}).get("vs_direct") or {}).get("added_p50_ms")
            for m, c in cells
        ]
    _bars(ax, [f"{m}\nc={c}" for m, c in cells], series, log_if_wide=True)
    ax.set_title("added latency p50 over direct, ms", fontsize=9)


def _throughput(ax: Any, result: Result) -> None:
    settings = result["settings"]
    cells = [("json", c) for c in settings["json_concurrency"]]
    cells += [("stream", c) for c in settings["stream_concurrency"]]
    series = {}
    for t, s in served(result):
        series[_label(t, s)] = [
            ((find(result, t, s, m, c) or {}).get("vs_direct") or {}).get("rps_ratio")
            for m, c in cells
        ]
    _bars(ax, [f"{m}\nc={c}" for m, c in cells], series, log_if_wide=True)
    ax.set_title("requests/s as a fraction of direct", fontsize=9)


def _memory(ax: Any, result: Result) -> None:
    names = [
        n
        for n, info in result["targets"].items()
        if n != "direct" and info.get("idle_rss_mb") is not None
    ]
    series = {
        "idle": [result["targets"][n].get("idle_rss_mb") for n in names],
        "peak": [result["targets"][n].get("peak_rss_mb") for n in names],
    }
    _bars(ax, names, series, log_if_wide=True)
    ax.axhline(60, color="black", linestyle="dashed", linewidth=1)
    ax.set_title("RSS, MB, one worker (dashed: idle target)", fontsize=9)


def _floor_ratio(ax: Any, result: Result) -> None:
    cells = [(m, c) for m in ("json", "stream") for c in (16, 64)]
    series = {}
    for t, s in served(result):
        if t in ("floor", "raw"):
            continue
        values = [
            ((find(result, t, s, m, c) or {}).get("vs_floor") or {}).get("cpu_ratio")
            for m, c in cells
        ]
        if any(v is not None for v in values):
            series[_label(t, s)] = values
    _bars(ax, [f"{m} c={c}" for m, c in cells], series)
    for limit, xs in ((1.2, (0, 1)), (1.5, (2, 3))):
        for x in xs:
            ax.hlines(limit, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_title("CPU per request / the stack floor's, same run (dashed: target)", fontsize=9)


def _steps(ax: Any, result: Result) -> None:
    steps = result.get("concurrency") or []
    groups = []
    for r in steps:
        label = f"{r['streams']}\n@{r['interval_ms']:g} ms"
        if label not in groups:
            groups.append(label)
    series: dict[str, list[float | None]] = {}
    for r in steps:
        name = _label(r["target"], r["surface"])
        values = series.setdefault(name, [None] * len(groups))
        cpu = r.get("cpu_us_per_chunk")
        values[groups.index(f"{r['streams']}\n@{r['interval_ms']:g} ms")] = cpu
    _bars(ax, groups, series, log_if_wide=True)
    ax.axhline(30, color="black", linestyle="dashed", linewidth=1)
    ax.set_title("concurrent slow streams: server CPU us per chunk (dashed: target)", fontsize=9)


def write_chart(result: Result, path: Path) -> bool:
    """Draw the six panels into `path`; False when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 8))
    _floor_ratio(axes[0][0], result)
    _cpu(axes[0][1], result)
    _steps(axes[0][2], result)
    _added(axes[1][0], result)
    _throughput(axes[1][1], result)
    _memory(axes[1][2], result)
    machine = result["machine"]
    fig.suptitle(
        f"router benchmark ({result['mode']}), {result['started']}: {machine['cpu_model']},"
        f" {machine['cores']} cores, Python {machine['python']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_soak_chart(soak: Result, path: Path) -> bool:
    """RSS, open descriptors and tasks over the soak."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, counts) = plt.subplots(1, 2, figsize=(12, 4))
    samples = soak["samples"]
    minutes = [s["t_s"] / 60 for s in samples]
    ax.plot(minutes, [s["rss_mb"] for s in samples], marker=".")
    first = soak.get("first_mb")
    if first:
        ax.axhline(first * 1.05, color="black", linestyle="dashed", linewidth=1, label="+5%")
        ax.legend(fontsize=8)
    ax.set_xlabel("minutes")
    ax.set_ylabel("gateway RSS, MB")
    ax.set_ylim(bottom=0)
    ax.set_title("mixed-traffic soak, one worker: RSS", fontsize=10)
    for key, label in (("fds", "open fds"), ("tasks", "asyncio tasks"), ("threads", "threads")):
        counts.plot(minutes, [s.get(key) for s in samples], marker=".", label=label)
    counts.set_xlabel("minutes")
    counts.set_ylim(bottom=0)
    counts.legend(fontsize=8)
    counts.set_title("sampled after each round", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
