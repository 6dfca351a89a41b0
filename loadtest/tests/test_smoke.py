"""``python -m loadtest compare --smoke`` end to end: real processes, a few seconds of load.

Slow and dependent on a working gateway_asyncio; asserts that the pipeline produced its files
and counted requests, never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_compare_smoke_writes_a_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "compare",
            "--smoke",
            "--targets",
            "asyncio",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    latest = tmp_path / "latest"
    assert latest.is_symlink()
    for name in ("index.html", "summary.md", "summary.json", "throughput.png", "latency.png"):
        assert (latest / name).is_file(), name
    summary = json.loads((latest / "summary.json").read_text())
    assert summary["versions"]["locust"]
    assert summary["machine"]["nproc"] >= 1
    targets = summary["targets"]
    assert targets["asyncio"]["status"] == "ok"
    for target, phases in (
        ("stub", ("light", "direct")),
        ("asyncio", ("mix", "light", "proxy_get", "health")),
    ):
        for phase in phases:
            result = targets[target]["phases"][phase]
            counted = sum(w["requests"]["Aggregated"]["count"] for w in result["windows"])
            assert counted > 0, (target, phase)
            assert result["totals"]["Aggregated"]["count"] > 0, (target, phase)
            assert (latest / target / f"{phase}_stats.csv").is_file()
            assert (latest / target / f"{phase}.html").is_file()
