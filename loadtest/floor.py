"""``python -m loadtest floor``: the framework floor, measured the way the gateways are.

A hello-world HTTP/1.1 server (h11 over the framework's own sockets, loadtest/floor_servers.py)
per framework, pinned to the service CPU, under the same step load through the same locustfile
(scenario ``hello``). The gap between a framework's floor, a gateway's ``/_gateway/health`` and
its proxied GET separates the framework's cost from the server stack's and the gateway's.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from loadtest import _procs, runner

__all__ = ["FRAMEWORKS", "main"]

FRAMEWORKS = ("asyncio", "trio", "curio")


def main(args: Any) -> int:
    """Run the floor benchmark and write its report under ``reports/<stamp>-floor``."""
    say = runner.Progress()
    started = time.time()
    preset_name = "smoke" if args.smoke else "quick" if args.quick else "default"
    preset = runner.PRESETS[preset_name]
    levels = runner.levels_up_to(args.users) if args.users else preset.levels
    step_s = max(2.0, args.duration / len(levels)) if args.duration else preset.step_s
    phase = runner.Phase(
        "hello", "hello", "step", levels=levels, step_s=step_s, settle_s=preset.settle_s
    )
    frameworks = [f.strip() for f in (args.frameworks or ",".join(FRAMEWORKS)).split(",")]
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise SystemExit(f"--frameworks: unknown {', '.join(unknown)}")
    out = Path(args.out or runner.REPO / "reports").resolve()
    run_dir = out / f"{time.strftime('%Y%m%d-%H%M%S')}-floor"
    run_dir.mkdir(parents=True, exist_ok=True)
    machine = runner.machine_info()  # before pinning ourselves
    service_cpus, generator_cpus, note = runner.cpu_layout()
    if generator_cpus:
        os.sched_setaffinity(0, generator_cpus)
    say("floor", "start", f"{', '.join(frameworks)}; levels {levels} x {step_s:g} s; {run_dir}")
    summary: dict[str, Any] = {
        "schema": 1,
        "kind": "floor",
        "latest_name": "latest-floor",
        "command": "python -m loadtest " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        "preset": preset_name,
        "settings": {"phase": dataclasses.asdict(phase), "server": "loadtest/floor_servers.py"},
        "pinning": {
            "service_cpus": sorted(service_cpus) if service_cpus else None,
            "generator_cpus": sorted(generator_cpus) if generator_cpus else None,
            "note": note,
        },
        "machine": machine,
        "versions": runner.versions(),
        "targets": {},
    }
    for framework in frameworks:
        name = f"h11-{framework}"
        argv = [sys.executable, "-m", "loadtest.floor_servers", framework, "--port", "0"]
        env = {**os.environ, "PYTHONPATH": str(runner.REPO)}
        try:
            server = _procs.launch(
                argv, env=env, cpus=service_cpus, log=run_dir / f"{name}.server.log"
            )
        except _procs.LaunchError as exc:
            say(name, "start", f"BROKEN: {exc}")
            summary["targets"][name] = {"kind": "floor", "status": "broken", "error": str(exc)}
            continue
        with server:
            say(name, "start", f"{server.url} (pid {server.pid})")
            summary["targets"][name] = runner._run_phases(
                name,
                "floor",
                server.url,
                [phase],
                out_dir=run_dir,
                extra_env={},
                generator_cpus=generator_cpus,
                service_pids=[server.pid],
                peer_pids=[],
                say=say,
                wait_quiet=args.wait_quiet,
            )
    return runner.finish_report(summary, run_dir, out, started, say)
