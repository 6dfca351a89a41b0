"""The load-test report and measurement code, without sockets, Locust or an event loop."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import h11
import pytest

from loadtest import report, runner
from loadtest.floor_servers import CLOSE, READ, next_action
from loadtest.meter import TOTAL, StepPlan, WindowMeter, bucket, percentile

LOCUST_COLUMNS = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
]


def window(
    label: str,
    users: int,
    name: str,
    *,
    rps: float,
    p50: float,
    count: int = 1000,
    failures: int = 0,
    seconds: float = 10.0,
    locust_cpu_s: float = 2.0,
    service_cpu_s: float = 5.0,
) -> dict[str, Any]:
    entry = {
        "count": count,
        "failures": failures,
        "rps": rps,
        "p50": p50,
        "p95": p50 * 2,
        "p99": p50 * 3,
    }
    return report.annotate_window(
        {
            "label": label,
            "users": users,
            "seconds": seconds,
            "locust_cpu_s": locust_cpu_s,
            "service_cpu_s": service_cpu_s,
            "peer_cpu_s": 0.0,
            "service_rss": 50 * 2**20,
            "requests": {name: entry, TOTAL: dict(entry)},
        },
        generator_cpus=1,
    )


def summary_with(
    *, proxy_p50: float, direct_p50: float, proxy_rps: float, health_rps: float, agg_p50: float
) -> dict[str, Any]:
    light = window("light:4", 4, "proxy_get", rps=30, p50=proxy_p50)
    light["requests"]["aggregate"] = {
        "count": 50,
        "failures": 0,
        "rps": 5,
        "p50": agg_p50,
        "p95": agg_p50,
        "p99": agg_p50,
    }
    return {
        "command": "python -m loadtest compare --quick",
        "started": "2026-01-01 00:00:00",
        "machine": {"cpu_model": "test CPU", "nproc": 2, "memory_bytes": 2**33},
        "pinning": {"service_cpus": [1], "generator_cpus": [0], "note": "test"},
        "versions": {"python": "3.11", "locust": "2.47"},
        "targets": {
            "stub": {
                "kind": "reference",
                "status": "ok",
                "phases": {
                    "light": {"windows": [window("light:4", 4, "direct", rps=40, p50=direct_p50)]},
                    "direct": {"windows": [window("direct:1", 1, "direct", rps=5000, p50=0.2)]},
                },
            },
            "asyncio": {
                "kind": "gateway",
                "status": "ok",
                "peak_rss": 80 * 2**20,
                "phases": {
                    "light": {"windows": [light]},
                    "proxy_get": {
                        "windows": [
                            window("proxy_get:1", 1, "proxy_get", rps=proxy_rps / 2, p50=1.0),
                            window("proxy_get:4", 4, "proxy_get", rps=proxy_rps, p50=2.0),
                        ]
                    },
                    "health": {
                        "windows": [window("health:4", 4, "health", rps=health_rps, p50=0.5)]
                    },
                    "mix": {"windows": [window("mix:16", 16, "proxy_get", rps=900, p50=3.0)]},
                },
            },
            "trio": {"kind": "gateway", "status": "broken", "error": "did not start"},
        },
    }


# -- Locust's CSV -----------------------------------------------------------------------------


def test_read_locust_stats_reads_names_counts_and_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "run_stats.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LOCUST_COLUMNS)
        writer.writerow(
            [
                "GET",
                "proxy_get",
                1200,
                3,
                2,
                2.4,
                0.5,
                40,
                480,
                120.5,
                0.3,
                2,
                2,
                3,
                3,
                4,
                6,
                8,
                11,
                30,
                40,
                40,
            ]
        )
        writer.writerow(
            [
                "",
                "Aggregated",
                1200,
                3,
                2,
                2.4,
                0.5,
                40,
                480,
                120.5,
                0.3,
                2,
                2,
                3,
                3,
                4,
                6,
                8,
                11,
                30,
                40,
                40,
            ]
        )
    rows = report.read_locust_stats(path)
    assert set(rows) == {"proxy_get", "Aggregated"}
    assert rows["proxy_get"]["count"] == 1200
    assert rows["proxy_get"]["failures"] == 3
    assert rows["proxy_get"]["p95_ms"] == 6
    assert rows["proxy_get"]["rps"] == pytest.approx(120.5)


def test_read_locust_stats_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert report.read_locust_stats(tmp_path / "absent.csv") == {}


# -- the meter --------------------------------------------------------------------------------


def test_bucket_keeps_sub_millisecond_resolution() -> None:
    assert bucket(0.1234) == 0.12
    assert bucket(12.345) == 12.3
    assert bucket(1234.5) == 1234.0


def test_percentile_of_a_histogram() -> None:
    hist = {1.0: 50, 2.0: 45, 10.0: 5}
    assert percentile(hist, 0.5) == 1.0
    assert percentile(hist, 0.95) == 2.0
    assert percentile(hist, 0.99) == 10.0
    assert percentile({}, 0.5) is None


def test_window_meter_counts_only_inside_a_window(tmp_path: Path) -> None:
    meter = WindowMeter(path=str(tmp_path / "w.jsonl"))
    meter.on_request("GET", "proxy_get", 5.0, 10)  # before the window: ignored
    meter.open("step:4", 4)
    for ms in (1.0, 1.0, 2.0, 3.0):
        meter.on_request("GET", "proxy_get", ms, 10)
    meter.on_request("GET", "health", 0.5, 10, exception=RuntimeError("boom"))
    record = meter.close()
    assert record is not None
    assert meter.close() is None
    assert record["users"] == 4
    assert record["requests"]["proxy_get"]["count"] == 4
    assert record["requests"]["proxy_get"]["p50"] == 1.0
    assert record["requests"]["health"]["failures"] == 1
    assert record["requests"][TOTAL]["count"] == 5
    assert record["requests"][TOTAL]["failures"] == 1
    lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["label"] == "step:4"


def test_step_plan_walks_levels_and_measures_after_settling() -> None:
    plan = StepPlan(levels=[1, 4, 16], step_s=10, settle_s=3)
    assert plan.step_at(0) == 0
    assert plan.step_at(12) == 1
    assert plan.step_at(30) is None
    assert not plan.in_window(2.5)
    assert plan.in_window(13.5)


def test_step_plan_stops_once_throughput_flattens() -> None:
    plan = StepPlan(levels=[1, 2, 4, 8, 16], step_s=5, settle_s=1, patience=2)
    assert not plan.record(1000, 0.0)
    assert not plan.record(2000, 0.0)
    assert not plan.record(2050, 0.0)  # one flat level is not yet saturation
    assert plan.record(2010, 0.0)
    assert plan.saturated_at == 3
    assert plan.step_at(21) is None


def test_step_plan_stops_on_errors() -> None:
    plan = StepPlan(levels=[1, 2, 4], step_s=5, settle_s=1)
    assert plan.record(1000, 0.5)


# -- judging ----------------------------------------------------------------------------------


def test_annotate_window_flags_a_busy_generator() -> None:
    calm = window("a:1", 1, "x", rps=10, p50=1, locust_cpu_s=5.0, seconds=10.0)
    busy = window("a:2", 2, "x", rps=10, p50=1, locust_cpu_s=9.5, seconds=10.0)
    assert calm["generator_bound"] is False
    assert busy["generator_bound"] is True
    assert calm["cpu_s_per_1k"] == pytest.approx(5.0)


def test_annotate_window_counts_a_peer_on_the_generator_core() -> None:
    shared = report.annotate_window(
        {
            "seconds": 10.0,
            "locust_cpu_s": 6.0,
            "peer_cpu_s": 4.0,
            "service_cpu_s": 1.0,
            "requests": {TOTAL: {"count": 100}},
        },
        generator_cpus=1,
    )
    assert shared["generator_bound"] is True


def test_annotate_window_flags_busy_generator_cpus_and_other_load() -> None:
    pinned = report.annotate_window(
        {
            "seconds": 10.0,
            "locust_cpu_s": 5.0,
            "service_cpu_s": 8.0,
            "foreign_cpu_s": 5.0,
            "cpu_busy": [0.95, 0.8],
            "generator_cpus": [0],
            "requests": {TOTAL: {"count": 100}},
        },
        generator_cpus=1,
    )
    assert pinned["generator_bound"] is True  # its CPU was full, whoever filled it
    assert pinned["contended"] is True
    assert pinned["foreign_cores"] == pytest.approx(0.5)


def test_goals_met() -> None:
    summary = summary_with(
        proxy_p50=1.5, direct_p50=0.4, proxy_rps=3000, health_rps=6000, agg_p50=55.0
    )
    goals = {g.name: g for g in report.evaluate_goals(summary)["asyncio"]}
    assert goals["overhead"].met is True
    assert goals["overhead"].value == pytest.approx(1.1)
    assert goals["efficiency"].value == pytest.approx(0.5)
    assert goals["efficiency"].met is True
    assert goals["aggregate"].met is True
    assert goals["generator"].met is True


def test_goals_not_met() -> None:
    summary = summary_with(
        proxy_p50=4.0, direct_p50=0.4, proxy_rps=1000, health_rps=5000, agg_p50=75.0
    )
    goals = {g.name: g for g in report.evaluate_goals(summary)["asyncio"]}
    assert goals["overhead"].met is False
    assert goals["efficiency"].met is False
    assert goals["aggregate"].met is False


def test_broken_targets_get_no_goals() -> None:
    summary = summary_with(proxy_p50=1, direct_p50=0.5, proxy_rps=1, health_rps=2, agg_p50=1)
    assert "trio" not in report.evaluate_goals(summary)


def test_generator_bound_levels_are_left_out_of_the_ratios() -> None:
    summary = summary_with(
        proxy_p50=1.0, direct_p50=0.5, proxy_rps=3000, health_rps=6000, agg_p50=55.0
    )
    health = summary["targets"]["asyncio"]["phases"]["health"]["windows"]
    health[0]["generator_bound"] = True
    goals = {g.name: g for g in report.evaluate_goals(summary)["asyncio"]}
    assert goals["efficiency"].met is None
    assert goals["generator"].met is False
    assert "health:4" in goals["generator"].note


def test_efficiency_needs_an_unbound_proxy_saturation() -> None:
    summary = summary_with(
        proxy_p50=1.0, direct_p50=0.5, proxy_rps=3000, health_rps=6000, agg_p50=55.0
    )
    proxy = summary["targets"]["asyncio"]["phases"]["proxy_get"]["windows"]
    proxy[-1]["generator_bound"] = True  # the highest level: saturation unknown
    goals = {g.name: g for g in report.evaluate_goals(summary)["asyncio"]}
    assert goals["efficiency"].met is None
    assert goals["efficiency"].shown == "n/a"


def test_efficiency_against_a_bound_health_ceiling_is_an_upper_bound() -> None:
    summary = summary_with(
        proxy_p50=1.0, direct_p50=0.5, proxy_rps=1000, health_rps=3000, agg_p50=55.0
    )
    health = summary["targets"]["asyncio"]["phases"]["health"]["windows"]
    faster = window("health:16", 16, "health", rps=9000, p50=1.0)
    faster["generator_bound"] = True
    health.append(faster)
    goals = {g.name: g for g in report.evaluate_goals(summary)["asyncio"]}
    assert goals["efficiency"].shown == "≤ 33%"
    assert goals["efficiency"].met is False  # even the upper bound misses 40 %


def test_write_report_writes_every_file(tmp_path: Path) -> None:
    summary = summary_with(
        proxy_p50=1.5, direct_p50=0.4, proxy_rps=3000, health_rps=6000, agg_p50=55.0
    )
    report.write_report(summary, tmp_path)
    for name in (
        "summary.json",
        "summary.md",
        "index.html",
        "throughput.png",
        "latency.png",
        "errors.png",
        "cpu.png",
        "memory.png",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["goals"]["asyncio"][0]["name"] == "overhead"
    markdown = (tmp_path / "summary.md").read_text()
    assert "| asyncio | efficiency |" in markdown
    assert "broken" in markdown
    page = (tmp_path / "index.html").read_text()
    assert '<img src="throughput.png"' in page


def test_console_table_marks_unmet_goals() -> None:
    summary = summary_with(
        proxy_p50=4.0, direct_p50=0.4, proxy_rps=1000, health_rps=5000, agg_p50=75.0
    )
    table = report.console_table(summary, report.evaluate_goals(summary))
    assert "3.60 ms!" in table
    assert "broken" in table


# -- runner plumbing --------------------------------------------------------------------------


def test_levels_up_to() -> None:
    assert runner.levels_up_to(48) == (1, 4, 16, 48)
    assert runner.levels_up_to(1) == (1,)


def test_phase_env_drives_the_locustfile() -> None:
    step = runner.Phase("proxy_get", "proxy_get", "step", levels=(1, 4), step_s=5, settle_s=2)
    assert step.env()["TRIPTYCH_LEVELS"] == "1,4"
    assert step.seconds == 10
    light = runner.Phase("light", "proxy_get,aggregate", "constant", users=4, duration_s=6, rate=10)
    assert light.env()["TRIPTYCH_RATE"] == "10"
    assert light.env()["TRIPTYCH_USERS"] == "4"


def test_presets_fit_their_time_budgets() -> None:
    for name, limit_s in (("default", 600), ("quick", 120)):
        preset = runner.PRESETS[name]
        planned = runner.planned_seconds(
            runner.stub_phases(preset, "step"), runner.gateway_phases(preset, "step"), 3
        )
        assert planned + 10 <= limit_s, (name, planned)


# -- the floor servers' protocol step ---------------------------------------------------------


def test_floor_server_answers_keep_alive_requests() -> None:
    conn = h11.Connection(h11.SERVER)
    assert next_action(conn) is READ
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = next_action(conn)
    assert first.startswith(b"HTTP/1.1 200")
    assert first.endswith(b'{"message":"hello, world"}')
    assert next_action(conn).startswith(b"HTTP/1.1 200")
    assert next_action(conn) is READ
    conn.receive_data(b"")
    assert next_action(conn) is CLOSE


def test_floor_server_closes_after_connection_close() -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert next_action(conn).startswith(b"HTTP/1.1 200")
    assert next_action(conn) is CLOSE
