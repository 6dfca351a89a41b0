"""The comparison report: goals, tables, charts, ``summary.md``, ``summary.json``, ``index.html``.

Everything here works on the plain ``summary`` dict the runner builds (and ``summary.json``
holds), so a report can be re-rendered from a saved run: ``python -m loadtest report DIR``.

Summary layout (abridged)::

    {"targets": {"<name>": {"kind": "gateway" | "reference", "status": "ok" | "broken" | ...,
                            "phases": {"<phase>": {"scenario", "shape", "windows": [window...],
                                                   "totals": {name: {...}}, ...}}}},
     "generator_cpus": int, ...}

A window is one measured load level, as :mod:`loadtest.meter` writes it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtest.meter import TOTAL

__all__ = [
    "GENERATOR_CPU_LIMIT",
    "Goal",
    "annotate_window",
    "best_window",
    "console_table",
    "evaluate_goals",
    "read_locust_stats",
    "render_markdown",
    "rerender",
    "write_charts",
    "write_html",
    "write_report",
]

GENERATOR_CPU_LIMIT = 0.9  # fraction of a core above which Locust itself limits the numbers
CONTENTION_LIMIT = 0.35  # cores of CPU used by neither Locust, the service nor the stub
OVERHEAD_GOAL_MS = 2.0
EFFICIENCY_GOAL = 0.40
AGGREGATE_GOAL_MS = 60.0

# Phases and the request name each one is judged by.
SATURATION_PHASES = {
    "proxy_get": "proxy_get",
    "health": "health",
    "direct": "direct",
    "hello": "hello",
}


SATURATION_HEADER = [
    "target", "phase", "users", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "CPU s/1k",
    "service CPU", "Locust CPU", "generator CPUs", "other cores", "flags",
]  # fmt: skip

# -- reading Locust's output ------------------------------------------------------------------


def _number(text: str | None) -> float | None:
    if text in (None, "", "N/A"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_locust_stats(path: Path) -> dict[str, dict[str, float | None]]:
    """Locust's ``*_stats.csv``: request name -> count, failures, rps and latency columns (ms)."""
    rows: dict[str, dict[str, float | None]] = {}
    if not path.exists():
        return rows
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = {
                "count": _number(row.get("Request Count")),
                "failures": _number(row.get("Failure Count")),
                "rps": _number(row.get("Requests/s")),
                "avg_ms": _number(row.get("Average Response Time")),
                "p50_ms": _number(row.get("50%")),
                "p95_ms": _number(row.get("95%")),
                "p99_ms": _number(row.get("99%")),
                "max_ms": _number(row.get("Max Response Time")),
            }
    return rows


def read_windows(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a :class:`~loadtest.meter.WindowMeter` wrote."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


# -- judging windows and goals ----------------------------------------------------------------


def annotate_window(window: dict[str, Any], generator_cpus: int) -> dict[str, Any]:
    """Add CPU fractions, CPU per 1,000 requests and the generator-bound flag to ``window``."""
    seconds = max(float(window.get("seconds") or 0.0), 1e-9)
    total = window.get("requests", {}).get(TOTAL, {})
    count = int(total.get("count") or 0)
    locust_frac = float(window.get("locust_cpu_s") or 0.0) / seconds
    shared_frac = (locust_frac + float(window.get("peer_cpu_s") or 0.0) / seconds) / max(
        generator_cpus, 1
    )
    busy = window.get("cpu_busy") or []
    gen_cpus = [c for c in window.get("generator_cpus") or [] if c < len(busy)]
    if gen_cpus and len(gen_cpus) < len(busy):  # pinned: the generator's CPUs as a whole
        shared_frac = max(shared_frac, sum(busy[c] for c in gen_cpus) / len(gen_cpus))
    window["locust_cpu_frac"] = round(locust_frac, 3)
    window["generator_core_frac"] = round(shared_frac, 3)
    window["generator_bound"] = (
        locust_frac > GENERATOR_CPU_LIMIT or shared_frac > GENERATOR_CPU_LIMIT
    )
    foreign = float(window.get("foreign_cpu_s") or 0.0) / seconds
    window["foreign_cores"] = round(foreign, 3)
    window["contended"] = foreign > CONTENTION_LIMIT
    service_cpu = float(window.get("service_cpu_s") or 0.0)
    window["service_cpu_frac"] = round(service_cpu / seconds, 3)
    window["cpu_s_per_1k"] = round(service_cpu / count * 1000, 4) if count else None
    return window


def _entry(window: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return window.get("requests", {}).get(name, {})


def best_window(windows: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The window with the highest throughput of ``name`` that the generator did not limit."""
    usable = [w for w in windows if not w.get("generator_bound") and _entry(w, name).get("count")]
    if not usable:
        return None
    return max(usable, key=lambda w: float(_entry(w, name).get("rps") or 0.0))


def _phase(summary: Mapping[str, Any], target: str, phase: str) -> Mapping[str, Any]:
    return summary.get("targets", {}).get(target, {}).get("phases", {}).get(phase, {})


def _light(summary: Mapping[str, Any], target: str, name: str) -> Mapping[str, Any] | None:
    windows = _phase(summary, target, "light").get("windows", [])
    return windows[-1] if windows and _entry(windows[-1], name).get("count") else None


@dataclass(frozen=True)
class Goal:
    """One target of issue 5, judged for one implementation."""

    name: str
    goal: str
    value: float | None
    shown: str
    met: bool | None  # None: could not be measured in this run
    note: str = ""


def _overhead(summary: Mapping[str, Any], target: str, reference: str) -> Goal:
    ours = _light(summary, target, "proxy_get")
    theirs = _light(summary, reference, "direct")
    label = "gateway overhead at light load (p50 - direct p50)"
    if ours is None or theirs is None:
        return Goal("overhead", f"≤ {OVERHEAD_GOAL_MS:g} ms", None, "n/a", None, "not measured")
    value = float(_entry(ours, "proxy_get")["p50"]) - float(_entry(theirs, "direct")["p50"])
    if ours.get("generator_bound") or theirs.get("generator_bound"):
        return Goal(
            "overhead",
            f"≤ {OVERHEAD_GOAL_MS:g} ms",
            value,
            f"({value:.2f} ms)",
            None,
            "not judged: a light window was generator-bound",
        )
    note = (
        f"{label}: {_entry(ours, 'proxy_get')['p50']:.2f} - "
        f"{_entry(theirs, 'direct')['p50']:.2f} ms"
    )
    closed = _closed_loop_overhead(summary, target, reference)
    if closed is not None:
        note += f"; one user back to back: {closed:.2f} ms"
    return Goal(
        "overhead",
        f"≤ {OVERHEAD_GOAL_MS:g} ms",
        value,
        f"{value:.2f} ms",
        value <= OVERHEAD_GOAL_MS,
        note,
    )


def _closed_loop_overhead(summary: Mapping[str, Any], target: str, reference: str) -> float | None:
    """p50 difference at the lowest step level (one user, no wait) when both ran it."""
    ours = _phase(summary, target, "proxy_get").get("windows", [])
    theirs = _phase(summary, reference, "direct").get("windows", [])
    if not ours or not theirs or ours[0].get("users") != theirs[0].get("users"):
        return None
    a, b = _entry(ours[0], "proxy_get").get("p50"), _entry(theirs[0], "direct").get("p50")
    return None if a is None or b is None else float(a) - float(b)


def _top(windows: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    counted = [w for w in windows if _entry(w, name).get("count")]
    return max(counted, key=lambda w: float(_entry(w, name).get("rps") or 0.0), default=None)


def _efficiency(summary: Mapping[str, Any], target: str) -> Goal:
    """Saturation throughput of proxy_get / of health, both from levels Locust did not limit.

    If the proxied GET's highest level was generator-bound its saturation is unknown (n/a). If
    a generator-bound health level out-ran the valid ones, the ceiling is only a lower bound, so
    the ratio is an upper bound: it can still prove the goal missed, never met.
    """
    goal = f"≥ {EFFICIENCY_GOAL:.0%}"
    proxy_windows = _phase(summary, target, "proxy_get").get("windows", [])
    health_windows = _phase(summary, target, "health").get("windows", [])
    proxy_top = _top(proxy_windows, "proxy_get")
    if proxy_top is None or _top(health_windows, "health") is None:
        return Goal("efficiency", goal, None, "n/a", None, "not measured")
    if proxy_top.get("generator_bound"):
        note = f"proxy_get's best level ({proxy_top['label']}) was generator-bound"
        return Goal("efficiency", goal, None, "n/a", None, note)
    health = best_window(health_windows, "health")
    if health is None:
        return Goal("efficiency", goal, None, "n/a", None, "every health level generator-bound")
    proxy_rps = float(_entry(proxy_top, "proxy_get")["rps"])
    health_rps = float(_entry(health, "health")["rps"])
    if not health_rps:
        return Goal("efficiency", goal, None, "n/a", None, "health answered nothing")
    value = proxy_rps / health_rps
    note = f"{proxy_rps:,.0f} ÷ {health_rps:,.0f} req/s ({proxy_top['label']}, {health['label']})"
    health_top = _top(health_windows, "health")
    if health_top is not None and health_top is not health:
        note += "; a faster health level was generator-bound: the ratio is an upper bound"
        met = False if value < EFFICIENCY_GOAL else None
        return Goal("efficiency", goal, value, f"≤ {value:.0%}", met, note)
    return Goal("efficiency", goal, value, f"{value:.0%}", value >= EFFICIENCY_GOAL, note)


def _aggregate(summary: Mapping[str, Any], target: str) -> Goal:
    goal = f"< {AGGREGATE_GOAL_MS:g} ms"
    window = _light(summary, target, "aggregate")
    if window is None:
        return Goal("aggregate", goal, None, "n/a", None, "not measured")
    entry = _entry(window, "aggregate")
    value = float(entry["p50"])
    failures = int(entry.get("failures") or 0)
    note = f"p50 of 5 parts x 50 ms; {failures} failed of {entry['count']}"
    if window.get("generator_bound"):
        return Goal(
            "aggregate",
            goal,
            value,
            f"({value:.1f} ms)",
            None,
            note + "; not judged: the light window was generator-bound",
        )
    met = value < AGGREGATE_GOAL_MS and failures == 0
    return Goal("aggregate", goal, value, f"{value:.1f} ms", met, note)


def _generator(summary: Mapping[str, Any], target: str) -> Goal:
    phases = summary.get("targets", {}).get(target, {}).get("phases", {})
    bound = [
        w["label"]
        for name, phase in phases.items()
        for w in phase.get("windows", [])
        if w.get("generator_bound") and name in ("light", "proxy_get", "health")
    ]
    warned = [name for name, phase in phases.items() if phase.get("cpu_warning_logged")]
    contended = [
        w["label"]
        for phase in phases.values()
        for w in phase.get("windows", [])
        if w.get("contended")
    ]
    notes = []
    if bound:
        notes.append("generator-bound levels (left out of the ratios): " + ", ".join(bound))
    if warned:
        notes.append("Locust logged its CPU warning in: " + ", ".join(warned))
    if contended:
        notes.append("other load on the machine during: " + ", ".join(contended))
    note = "; ".join(notes)
    met = not bound
    return Goal("generator", "never the bottleneck", None, "ok" if met else "bound", met, note)


def evaluate_goals(summary: Mapping[str, Any], reference: str = "stub") -> dict[str, list[Goal]]:
    """Each gateway's goals: overhead, efficiency, aggregate latency, generator headroom."""
    results: dict[str, list[Goal]] = {}
    for name, target in summary.get("targets", {}).items():
        if target.get("kind") != "gateway" or target.get("status") != "ok":
            continue
        results[name] = [
            _overhead(summary, name, reference),
            _efficiency(summary, name),
            _aggregate(summary, name),
            _generator(summary, name),
        ]
    return results


# -- rendering --------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def _rps(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f}"


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "n/a"}[met]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _saturation_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for target, data in summary.get("targets", {}).items():
        for phase, name in SATURATION_PHASES.items():
            for w in data.get("phases", {}).get(phase, {}).get("windows", []):
                e = _entry(w, name)
                count = int(e.get("count") or 0)
                errors = (int(e.get("failures") or 0) / count) if count else 0.0
                rows.append(
                    [
                        target,
                        phase,
                        str(w.get("users")),
                        _rps(e.get("rps")),
                        _ms(e.get("p50")),
                        _ms(e.get("p95")),
                        _ms(e.get("p99")),
                        f"{errors:.2%}",
                        _ms(w.get("cpu_s_per_1k")),
                        f"{w.get('service_cpu_frac', 0):.0%}",
                        f"{w.get('locust_cpu_frac', 0):.0%}",
                        f"{w.get('generator_core_frac', 0):.0%}",
                        f"{w.get('foreign_cores', 0):.2f}",
                        _flags(w),
                    ]
                )
    return rows


def _flags(window: Mapping[str, Any]) -> str:
    flags = []
    if window.get("generator_bound"):
        flags.append("GENERATOR-BOUND")
    if window.get("contended"):
        flags.append("CONTENDED")
    return " ".join(flags)


def _status_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for target, data in summary.get("targets", {}).items():
        verify = data.get("verify") or {}
        failed = [c["name"] + ": " + c["detail"] for c in verify.get("checks", []) if not c["ok"]]
        detail = data.get("error") or "; ".join(failed) or ""
        rows.append(
            [
                target,
                data.get("kind", ""),
                data.get("status", ""),
                data.get("url", ""),
                f"{(data.get('peak_rss') or 0) / 2**20:.0f} MiB" if data.get("peak_rss") else "-",
                detail,
            ]
        )
    return rows


def _light_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for target, data in summary.get("targets", {}).items():
        for w in data.get("phases", {}).get("light", {}).get("windows", []):
            for name, e in w.get("requests", {}).items():
                if name == TOTAL:
                    continue
                rows.append(
                    [
                        target,
                        name,
                        str(w.get("users")),
                        _rps(e.get("rps")),
                        _ms(e.get("p50")),
                        _ms(e.get("p95")),
                        _ms(e.get("p99")),
                        str(e.get("failures", 0)),
                    ]
                )
    return rows


def _mix_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for target, data in summary.get("targets", {}).items():
        for w in data.get("phases", {}).get("mix", {}).get("windows", []):
            for name, e in sorted(w.get("requests", {}).items()):
                count = int(e.get("count") or 0)
                errors = int(e.get("failures") or 0) / count if count else 0.0
                rows.append(
                    [
                        target,
                        name,
                        _rps(e.get("rps")),
                        _ms(e.get("p50")),
                        _ms(e.get("p95")),
                        _ms(e.get("p99")),
                        f"{errors:.2%}",
                    ]
                )
    return rows


def _goal_rows(goals: Mapping[str, Sequence[Goal]]) -> list[list[str]]:
    return [
        [target, g.name, g.goal, g.shown, _mark(g.met), g.note]
        for target, items in goals.items()
        for g in items
    ]


def render_markdown(summary: Mapping[str, Any], goals: Mapping[str, Sequence[Goal]]) -> str:
    """``summary.md``: what ran, on what, the goals met or not, and the numbers behind them."""
    machine = summary.get("machine", {})
    pinning = summary.get("pinning", {})
    lines = [
        f"# Triptych load-test comparison — {summary.get('started', '')}",
        "",
        f"Command: `{summary.get('command', '')}`  ",
        f"Machine: {machine.get('cpu_model', '?')}, {machine.get('nproc', '?')} CPUs, "
        f"{(machine.get('memory_bytes') or 0) / 2**30:.1f} GiB; Python "
        f"{summary.get('versions', {}).get('python', '?')}, Locust "
        f"{summary.get('versions', {}).get('locust', '?')}  ",
        f"Pinning: service CPUs {pinning.get('service_cpus')}, generator (Locust, stub) CPUs "
        f"{pinning.get('generator_cpus')}; {pinning.get('note', '')}  ",
        f"Wall time: {summary.get('duration_s', 0):.0f} s; CPU busy with other work before the "
        f"run: {summary.get('background_load_cores', 0):.2f} cores",
        "",
        "## Targets",
        "",
        *_table(["target", "kind", "status", "url", "peak RSS", "detail"], _status_rows(summary)),
        "",
        "## Goals",
        "",
        *_table(
            ["implementation", "goal", "target", "measured", "verdict", "how"], _goal_rows(goals)
        ),
        "",
        "## Light load (constant rate)",
        "",
        *_table(
            ["target", "request", "users", "req/s", "p50 ms", "p95 ms", "p99 ms", "failures"],
            _light_rows(summary),
        ),
        "",
        "## Saturation (one row per load level)",
        "",
        "CPU s/1k = service CPU seconds per 1,000 requests; service and Locust CPU as a share "
        "of one core; generator CPUs = how busy the load generator's CPUs were (Locust, stub, "
        "anything else); other cores = CPU used by no measured process (other programs, "
        "kernel). A GENERATOR-BOUND level is left out of every ratio; a CONTENDED one had "
        f"more than {CONTENTION_LIMIT} cores of other load and is less trustworthy.",
        "",
        *_table(
            SATURATION_HEADER,
            _saturation_rows(summary),
        ),
        "",
        "## Workload mix",
        "",
        *_table(
            ["target", "request", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
            _mix_rows(summary),
        ),
        "",
    ]
    return "\n".join(lines)


def console_table(summary: Mapping[str, Any], goals: Mapping[str, Sequence[Goal]]) -> str:
    """The end-of-run table printed on stdout."""
    header = f"{'target':<10} {'status':<8} {'overhead':>10} {'efficiency':>11} "
    header += f"{'aggregate':>10} {'best req/s':>11} {'generator':>10}"
    lines = [header, "-" * len(header)]
    for target, data in summary.get("targets", {}).items():
        by_name = {g.name: g for g in goals.get(target, [])}
        best = None
        for phase, name in SATURATION_PHASES.items():
            w = best_window(data.get("phases", {}).get(phase, {}).get("windows", []), name)
            if w is not None and phase in ("proxy_get", "direct", "hello"):
                best = _entry(w, name).get("rps")

        def shown(key: str, by_name: Mapping[str, Goal] = by_name) -> str:
            g = by_name.get(key)
            return "" if g is None else f"{g.shown}{'' if g.met in (True, None) else '!'}"

        lines.append(
            f"{target:<10} {data.get('status', ''):<8} {shown('overhead'):>10} "
            f"{shown('efficiency'):>11} {shown('aggregate'):>10} {_rps(best):>11} "
            f"{shown('generator'):>10}"
        )
    lines.append("('!' marks a goal not met; n/a: not measurable in this run — see summary.md)")
    return "\n".join(lines)


# -- charts -----------------------------------------------------------------------------------


def _series(summary: Mapping[str, Any]) -> list[tuple[str, str, str, list[Mapping[str, Any]]]]:
    out = []
    for target, data in summary.get("targets", {}).items():
        for phase, name in SATURATION_PHASES.items():
            windows = data.get("phases", {}).get(phase, {}).get("windows", [])
            if windows:
                out.append((target, phase, name, windows))
    return out


_STYLE = {"proxy_get": "-", "health": "--", "direct": ":", "hello": "-."}


def write_charts(summary: Mapping[str, Any], out_dir: Path) -> list[str]:
    """Write the PNG charts into ``out_dir``; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(summary)
    files: list[str] = []
    colors: dict[str, str] = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def color(target: str) -> str:
        return colors.setdefault(target, palette[len(colors) % len(palette)])

    def plot(ax: Any, key: str, y_of: Any) -> None:
        for target, phase, name, windows in series:
            xs = [w["users"] for w in windows]
            ys = [y_of(w, name) for w in windows]
            ax.plot(
                xs, ys, _STYLE[phase], marker="o", color=color(target), label=f"{target} {phase}"
            )
            bound = [
                (x, y)
                for x, y, w in zip(xs, ys, windows, strict=True)
                if w.get("generator_bound") and y is not None
            ]
            if bound:
                ax.plot(*zip(*bound, strict=True), "x", color="red", markersize=10)
        ax.set_xscale("log", base=2)
        levels = sorted({w["users"] for _, _, _, ws in series for w in ws})
        if levels:
            ax.set_xticks(levels, [str(n) for n in levels])
        ax.set_xlabel("users")
        ax.set_title(key)
        ax.grid(True, alpha=0.3)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        files.append(name)

    fig, ax = plt.subplots(figsize=(8, 5))
    plot(ax, "throughput (req/s); red x = generator-bound", lambda w, n: _entry(w, n).get("rps"))
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=8)
    save(fig, "throughput.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, p in zip(axes, ("p50", "p95", "p99"), strict=True):
        plot(ax, f"{p} latency (ms)", lambda w, n, p=p: _entry(w, n).get(p))
        ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    save(fig, "latency.png")

    def error_rate(w: Mapping[str, Any], n: str) -> float:
        e = _entry(w, n)
        return 100.0 * (e.get("failures") or 0) / e["count"] if e.get("count") else 0.0

    fig, ax = plt.subplots(figsize=(8, 4))
    plot(ax, "error rate (%)", error_rate)
    ax.legend(fontsize=8)
    save(fig, "errors.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    plot(ax, "service CPU seconds per 1,000 requests", lambda w, n: w.get("cpu_s_per_1k"))
    ax.legend(fontsize=8)
    save(fig, "cpu.png")

    targets = [
        (t, d["peak_rss"] / 2**20)
        for t, d in summary.get("targets", {}).items()
        if d.get("peak_rss")
    ]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if targets:
        ax.bar(
            [t for t, _ in targets], [m for _, m in targets], color=[color(t) for t, _ in targets]
        )
    ax.set_ylabel("MiB")
    ax.set_title("peak RSS (process and children)")
    save(fig, "memory.png")
    return files


# -- files ------------------------------------------------------------------------------------

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, td:nth-child(2) { text-align: left; }
.no { color: #b00; font-weight: bold; } .yes { color: #070; } img { max-width: 100%; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Command: <code>{{ command }}</code><br>{{ machine }}<br>{{ pinning }}</p>
{% for section in sections %}
<h2>{{ section.title }}</h2>{% if section.note %}<p>{{ section.note }}</p>{% endif %}
<table><tr>{% for h in section.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in section.rows %}<tr>{% for c in row %}
<td{% if c == 'NOT met' or c == 'broken' or 'BOUND' in c or 'CONTENDED' in c %} class="no"
{%- elif c == 'met' %} class="yes"{% endif %}>{{ c }}</td>
{% endfor %}</tr>{% endfor %}</table>
{% endfor %}
<h2>Charts</h2>
{% for chart in charts %}<p><a href="{{ chart }}"><img src="{{ chart }}" alt="{{ chart }}"></a></p>
{% endfor %}
<h2>Files</h2><ul>
{% for f in files %}<li><a href="{{ f }}">{{ f }}</a></li>{% endfor %}
</ul>
<p><a href="summary.md">summary.md</a> · <a href="summary.json">summary.json</a></p>
</body></html>
"""


def write_html(
    summary: Mapping[str, Any],
    goals: Mapping[str, Sequence[Goal]],
    charts: Sequence[str],
    out_dir: Path,
) -> Path:
    """``index.html``: the tables of summary.md, the charts and links to Locust's files."""
    import jinja2

    machine = summary.get("machine", {})
    pinning = summary.get("pinning", {})
    sections = [
        {
            "title": "Targets",
            "note": "",
            "header": ["target", "kind", "status", "url", "peak RSS", "detail"],
            "rows": _status_rows(summary),
        },
        {
            "title": "Goals",
            "note": "",
            "header": ["implementation", "goal", "target", "measured", "verdict", "how"],
            "rows": _goal_rows(goals),
        },
        {
            "title": "Light load (constant rate)",
            "note": "",
            "header": [
                "target",
                "request",
                "users",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "failures",
            ],
            "rows": _light_rows(summary),
        },
        {
            "title": "Saturation",
            "note": "CPU s/1k = service CPU seconds per 1,000 requests.",
            "header": SATURATION_HEADER,
            "rows": _saturation_rows(summary),
        },
        {
            "title": "Workload mix",
            "note": "",
            "header": ["target", "request", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
            "rows": _mix_rows(summary),
        },
    ]
    files = sorted(
        str(p.relative_to(out_dir))
        for p in out_dir.rglob("*")
        if p.is_file()
        and p.suffix in (".html", ".csv", ".log", ".jsonl")
        and p.name != "index.html"
    )
    page = (
        jinja2.Environment(autoescape=True)
        .from_string(_HTML)
        .render(
            title=f"Triptych load-test comparison — {summary.get('started', '')}",
            command=summary.get("command", ""),
            machine=(
                f"{machine.get('cpu_model', '?')}, {machine.get('nproc', '?')} CPUs, "
                f"{(machine.get('memory_bytes') or 0) / 2**30:.1f} GiB"
            ),
            pinning=(
                f"service CPUs {pinning.get('service_cpus')}, generator CPUs "
                f"{pinning.get('generator_cpus')}; {pinning.get('note', '')}"
            ),
            sections=sections,
            charts=charts,
            files=files,
        )
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_report(summary: dict[str, Any], out_dir: Path) -> dict[str, list[Goal]]:
    """Write summary.json, summary.md, the charts and index.html into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    goals = evaluate_goals(summary)
    summary["goals"] = {t: [asdict(g) for g in items] for t, items in goals.items()}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out_dir / "summary.md").write_text(render_markdown(summary, goals), encoding="utf-8")
    charts = write_charts(summary, out_dir)
    write_html(summary, goals, charts, out_dir)
    return goals


def rerender(directory: str | Path) -> int:
    """Re-render the report in ``directory`` from its summary.json; return an exit status."""
    out_dir = Path(directory)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    goals = write_report(summary, out_dir)
    print(console_table(summary, goals))
    return 0
