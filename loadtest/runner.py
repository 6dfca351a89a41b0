"""The side-by-side comparison behind ``python -m loadtest compare``.

On one machine: Postgres and the upstream stub start once; then each implementation in turn
starts with identical settings on its own CPU (Locust, the stub and Postgres on the others),
passes the verify gate or is reported broken, and runs the same phases through Locust:

=========== ======================== =========================================================
phase       scenario                 what it measures
=========== ======================== =========================================================
mix         the whole workload mix   realistic latencies and errors; its settle time is the
                                     warm-up of the service
light       proxy_get + aggregate    latency at a low fixed rate (overhead, fan-out p50)
proxy_get   proxy_get                throughput and latency per load level, up to saturation
health      health (reference)       the same service's ceiling: hypercorn/h11 + core, no I/O
=========== ======================== =========================================================

The stub is measured directly first (``light`` and ``direct``), moved to the service CPU for
that, so the gateway's overhead is the difference. Each Locust run is a subprocess writing its
CSV, HTML and log next to a JSON-lines file of measurement windows (see loadtest.meter).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import requests

from loadtest import _procs, report, workload
from loadtest.meter import machine_cpu_times, process_tree_rss

__all__ = [
    "IMPLEMENTATIONS",
    "PRESETS",
    "Phase",
    "Preset",
    "Progress",
    "available_implementations",
    "compare",
    "cpu_layout",
    "finish_report",
    "machine_info",
    "planned_seconds",
    "run_locust",
    "verify",
    "versions",
]

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
IMPLEMENTATIONS = ("asyncio", "trio", "curio")
STUB = "stub"
QUIET_LIMIT = 0.2  # cores busy before the run above which the machine is not quiet
VERSIONED = (
    "locust",
    "gevent",
    "geventhttpclient",
    "h11",
    "hypercorn",
    "httpx",
    "asyncpg",
    "trio",
    "trio-asyncio",
    "curio",
    "psutil",
    "matplotlib",
    "pgserver",
    "gateway-core",
    "gateway-asyncio",
    "gateway-trio",
    "gateway-curio",
)


@dataclass(frozen=True)
class Preset:
    """Sizes of one comparison: load levels and how long each phase runs (seconds)."""

    levels: tuple[int, ...]
    step_s: float
    settle_s: float
    light_users: int
    light_rate: float
    light_s: float
    mix_users: int
    mix_s: float
    warmup_s: float
    constant_users: int
    constant_s: float


PRESETS: dict[str, Preset] = {
    # about 9 minutes for three implementations on a 2-core machine
    "default": Preset((1, 4, 16, 48), 12, 3, 4, 10, 15, 16, 15, 5, 32, 30),
    # under 2 minutes
    "quick": Preset((2, 32), 4, 1, 4, 10, 4, 16, 2, 2, 32, 8),
    # a few seconds per target: proves the pipeline, measures nothing
    "smoke": Preset((2,), 2, 1, 2, 10, 2, 4, 1, 1, 4, 2),
}


@dataclass(frozen=True)
class Phase:
    """One Locust run: a scenario under a shape."""

    name: str
    scenario: str
    shape: str  # "step" or "constant"
    users: int = 1
    levels: tuple[int, ...] = ()
    step_s: float = 0.0
    duration_s: float = 0.0
    settle_s: float = 0.0
    rate: float = 0.0

    def env(self) -> dict[str, str]:
        """The TRIPTYCH_* variables that make the locustfile run this phase."""
        env = {
            "TRIPTYCH_SCENARIO": self.scenario,
            "TRIPTYCH_SHAPE": self.shape,
            "TRIPTYCH_SETTLE_S": f"{self.settle_s:g}",
            "TRIPTYCH_RATE": f"{self.rate:g}",
            "TRIPTYCH_LABEL": self.name,
        }
        if self.shape == "step":
            env["TRIPTYCH_LEVELS"] = ",".join(str(n) for n in self.levels)
            env["TRIPTYCH_STEP_S"] = f"{self.step_s:g}"
        else:
            env["TRIPTYCH_USERS"] = str(self.users)
            env["TRIPTYCH_DURATION"] = f"{self.duration_s:g}"
        return env

    @property
    def seconds(self) -> float:
        """Longest time the phase can take (a step load may stop early)."""
        return self.step_s * len(self.levels) if self.shape == "step" else self.duration_s


def levels_up_to(users: int) -> tuple[int, ...]:
    """1, 4, 16, … below ``users``, then ``users``: the step load's levels."""
    levels = []
    n = 1
    while n < users:
        levels.append(n)
        n *= 4
    return (*levels, users)


def main_phase(name: str, scenario: str, preset: Preset, shape: str) -> Phase:
    """A saturation phase under the chosen shape."""
    if shape == "step":
        return Phase(
            name,
            scenario,
            "step",
            levels=preset.levels,
            step_s=preset.step_s,
            settle_s=preset.settle_s,
        )
    return Phase(
        name,
        scenario,
        "constant",
        users=preset.constant_users,
        duration_s=preset.constant_s,
        settle_s=preset.settle_s,
    )


def gateway_phases(preset: Preset, shape: str) -> list[Phase]:
    """The phases every implementation runs, in order."""
    return [
        Phase(
            "mix",
            "mix",
            "constant",
            users=preset.mix_users,
            duration_s=preset.warmup_s + preset.mix_s,
            settle_s=preset.warmup_s,
        ),
        Phase(
            "light",
            "proxy_get,aggregate",
            "constant",
            users=preset.light_users,
            duration_s=preset.light_s,
            settle_s=preset.settle_s,
            rate=preset.light_rate,
        ),
        main_phase("proxy_get", "proxy_get", preset, shape),
        main_phase("health", "health", preset, shape),
    ]


def stub_phases(preset: Preset, shape: str) -> list[Phase]:
    """The reference phases run against the stub directly."""
    return [
        Phase(
            "light",
            "direct",
            "constant",
            users=preset.light_users,
            duration_s=preset.light_s,
            settle_s=preset.settle_s,
            rate=preset.light_rate,
        ),
        main_phase("direct", "direct", preset, shape),
    ]


def planned_seconds(stub: Sequence[Phase], gateway: Sequence[Phase], gateways: int) -> float:
    """Longest expected wall time: phases, ~1 s Locust start-up each, ~3 s per service start."""
    return sum(p.seconds + 1 for p in stub) + gateways * (sum(p.seconds + 1 for p in gateway) + 3)


# -- environment facts ------------------------------------------------------------------------


def available_implementations() -> list[str]:
    """The implementations whose package has a ``__main__`` module."""
    found = []
    for impl in IMPLEMENTATIONS:
        with contextlib.suppress(ImportError, ValueError):
            if importlib.util.find_spec(f"gateway_{impl}.__main__") is not None:
                found.append(impl)
    return found


def cpu_layout() -> tuple[set[int] | None, set[int] | None, str]:
    """(service CPUs, generator CPUs, note): one CPU for the service, the rest for the rest."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None, "no CPU affinity on this platform: nothing pinned"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None, "a single CPU: nothing pinned, load generator and service compete"
    note = (
        "the service alone on its CPU; Locust, the stub, the runner and the embedded Postgres "
        "share the others (the stub moves to the service CPU for its own direct reference)"
    )
    return {cpus[-1]}, set(cpus[:-1]), note


def background_load(seconds: float = 1.0) -> float:
    """CPU cores busy right now (before we start anything): other programs on the machine."""
    before = machine_cpu_times()
    time.sleep(seconds)
    after = machine_cpu_times()
    return sum(
        (b1 - b0) / (t1 - t0) for (b0, t0), (b1, t1) in zip(before, after, strict=False) if t1 > t0
    )


def _wait_until_quiet(target: str, phase: str, patience: float, say: Progress) -> None:
    """Wait (up to ``patience`` seconds) until other work on the machine has died down."""
    deadline = time.monotonic() + patience
    load = background_load()
    if load <= QUIET_LIMIT:
        return
    say(target, phase, f"waiting for a quiet machine ({load:.2f} cores busy elsewhere)")
    while load > QUIET_LIMIT and time.monotonic() < deadline:
        load = background_load(2.0)
    say(target, phase, f"{'quiet' if load <= QUIET_LIMIT else 'still busy'}: {load:.2f} cores")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory, OS: enough to know what the numbers were measured on."""
    return {
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    """Python and the versions of every package the numbers depend on."""
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _git() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


# -- progress ---------------------------------------------------------------------------------


class Progress:
    """One line per phase on stdout, stamped with the time since the start."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, target: str, phase: str, message: str) -> None:
        """Print a progress line."""
        elapsed = time.monotonic() - self.start
        print(f"[{elapsed:6.1f}s] {target:<10} {phase:<10} {message}", flush=True)


# -- one Locust run ---------------------------------------------------------------------------


def _locust_cpu(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def run_locust(
    phase: Phase,
    *,
    host: str,
    out_dir: Path,
    extra_env: Mapping[str, str],
    generator_cpus: set[int] | None,
    service_pids: Sequence[int] = (),
    peer_pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Run Locust headless for ``phase`` against ``host``; return the phase's results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / phase.name
    windows_file = out_dir / f"{phase.name}_windows.jsonl"
    log_file = out_dir / f"{phase.name}_locust.log"
    for stale in (windows_file, log_file):
        stale.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPTYCH_")}
    env.update(phase.env())
    env.update(extra_env)
    env["TRIPTYCH_WINDOWS_FILE"] = str(windows_file)
    env["TRIPTYCH_SERVICE_PIDS"] = ",".join(str(p) for p in service_pids)
    env["TRIPTYCH_PEER_PIDS"] = ",".join(str(p) for p in peer_pids)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--logfile",
        str(log_file),
        "--loglevel",
        "INFO",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--stop-timeout",
        "5",
    ]
    started = time.monotonic()
    timeout = phase.seconds + 60
    peak_rss = 0
    locust_cpu: float | None = None
    with open(out_dir / f"{phase.name}_locust.out", "wb") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _procs.pin(proc.pid, generator_cpus)
        try:
            while proc.poll() is None:
                if service_pids:
                    peak_rss = max(peak_rss, process_tree_rss(service_pids))
                locust_cpu = _locust_cpu(proc.pid) or locust_cpu
                if time.monotonic() - started > timeout:
                    proc.kill()
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    wall = time.monotonic() - started
    gen_count = len(generator_cpus) if generator_cpus else 1
    windows = [report.annotate_window(w, gen_count) for w in report.read_windows(windows_file)]
    logs = (log_file, out_dir / f"{phase.name}_locust.out")
    texts = [p.read_text(errors="replace") for p in logs if p.exists()]
    return {
        "scenario": phase.scenario,
        "shape": phase.shape,
        "settings": dataclasses.asdict(phase),
        "host": host,
        "exit_code": proc.returncode,
        "wall_s": round(wall, 2),
        "windows": windows,
        "totals": report.read_locust_stats(Path(f"{prefix}_stats.csv")),
        "cpu_warning_logged": any("CPU usage above" in t for t in texts),
        "locust_cpu_s": round(locust_cpu, 3) if locust_cpu is not None else None,
        "service_peak_rss": peak_rss or None,
        "saturated": _saturated(windows, phase),
        "files": sorted(p.name for p in out_dir.glob(f"{phase.name}*")),
    }


def _saturated(windows: Sequence[Mapping[str, Any]], phase: Phase) -> bool | None:
    """Whether a step load reached saturation: it stopped early, or its last level gained < 5%."""
    if phase.shape != "step" or len(windows) < 2:
        return None
    if len(windows) < len(phase.levels):
        return True
    rps = [w["requests"].get(report.TOTAL, {}).get("rps") or 0.0 for w in windows]
    return rps[-1] < 1.05 * max(rps[:-1])


def _describe(result: Mapping[str, Any], name: str) -> str:
    windows = result.get("windows", [])
    if not windows:
        return f"no measurement (exit {result.get('exit_code')}, see its log)"
    best = max(windows, key=lambda w: w["requests"].get(name, {}).get("rps") or 0)
    entry = best["requests"].get(name) or best["requests"].get(report.TOTAL, {})
    flag = " GENERATOR-BOUND" if any(w.get("generator_bound") for w in windows) else ""
    p50 = entry.get("p50")
    return (
        f"{len(windows)} level(s), best {entry.get('rps', 0):,.0f} req/s at {best['users']} users,"
        f" p50 {p50 if p50 is not None else '-'} ms, {entry.get('failures', 0)} failures{flag}"
    )


# -- the verify gate --------------------------------------------------------------------------


def verify(url: str, admin_token: str, upstream_url: str) -> dict[str, Any]:
    """Smoke-test a gateway: health, ready, set-up, one proxied GET, one 401. Never raises."""
    checks: list[dict[str, Any]] = []
    found: dict[str, Any] = {}

    def check(name: str, probe: Callable[[], str]) -> bool:
        try:
            detail, ok = probe(), True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
        checks.append({"name": name, "ok": ok, "detail": detail})
        return ok

    def expect(cond: bool, message: str) -> None:
        if not cond:
            raise AssertionError(message)

    def health() -> str:
        r = requests.get(f"{url}/_gateway/health", timeout=5)
        expect(r.status_code == 200, f"HTTP {r.status_code}")
        body = r.json()
        expect(body.get("status") == "ok", f"status {body.get('status')!r}")
        found.update(implementation=body.get("implementation"), version=body.get("version"))
        return f"{body.get('implementation')} {body.get('version')}"

    def ready() -> str:
        r = requests.get(f"{url}/_gateway/ready", timeout=5)
        expect(r.status_code == 200, f"HTTP {r.status_code}")
        return "200"

    def set_up() -> str:
        found["key"] = workload.set_up(url, admin_token, upstream_url).key
        return "routes and key in force"

    target = f"{url}{workload.PROXY_PREFIX}{workload.SMALL_PATH}"

    def proxied() -> str:
        r = requests.get(target, headers={"Authorization": f"Bearer {found['key']}"}, timeout=5)
        expect(r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}")
        echo = r.json()
        expect(echo.get("method") == "GET", f"echo method {echo.get('method')!r}")
        expect(echo.get("path") == workload.SMALL_PATH, f"echo path {echo.get('path')!r}")
        return f"stub echoed GET {echo['path']}"

    def unauthorised() -> str:
        r = requests.get(target, timeout=5)
        expect(r.status_code == 401, f"HTTP {r.status_code} without a key")
        return "401"

    check("health", health)
    check("ready", ready)
    if check("set-up", set_up):
        check("proxied GET", proxied)
    check("401 without key", unauthorised)
    return {"ok": all(c["ok"] for c in checks), "checks": checks, **found}


# -- services ---------------------------------------------------------------------------------


def _backend() -> tuple[SimpleNamespace, str]:
    """The test harness (tests/harness, installed by ``make venv``) that starts everything."""
    from harness import postgres, processes

    ns = SimpleNamespace(
        provide=postgres.provide,
        create_database=postgres.create_database,
        start_stub=processes.start_stub,
        start_gateway=processes.start_gateway,
    )
    return ns, "tests/harness"


@contextlib.contextmanager
def _pinned(pid: int, cpus: set[int] | None, restore: set[int] | None) -> Iterator[None]:
    """Move ``pid`` (and its children) to ``cpus`` for a while."""

    def move(to: set[int] | None) -> None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                _procs.pin(proc.pid, to)

    move(cpus)
    try:
        yield
    finally:
        move(restore)


# -- the comparison ---------------------------------------------------------------------------


@dataclass
class Options:
    """What ``python -m loadtest compare`` was asked to do."""

    targets: list[str]
    preset_name: str
    preset: Preset
    shape: str
    out: Path
    external: dict[str, str]
    admin_token: str
    upstream_url: str | None
    stub_url: str | None
    workers: int
    db_pool: int
    upstream_pool: int
    command: str
    wait_quiet: float = 0.0


def _run_phases(
    name: str,
    kind: str,
    host: str,
    phases: Sequence[Phase],
    *,
    out_dir: Path,
    extra_env: Mapping[str, str],
    generator_cpus: set[int] | None,
    service_pids: Sequence[int],
    peer_pids: Sequence[int],
    say: Progress,
    wait_quiet: float = 0.0,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for phase in phases:
        if wait_quiet > 0:
            _wait_until_quiet(name, phase.name, wait_quiet, say)
        detail = (
            f"levels {','.join(map(str, phase.levels))} x {phase.step_s:g} s"
            if phase.shape == "step"
            else f"{phase.users} users x {phase.duration_s:g} s"
            + (f" at {phase.rate:g}/s each" if phase.rate else "")
        )
        say(name, phase.name, f"{phase.scenario}: {detail}")
        result = run_locust(
            phase,
            host=host,
            out_dir=out_dir / name,
            extra_env=extra_env,
            generator_cpus=generator_cpus,
            service_pids=service_pids,
            peer_pids=peer_pids,
        )
        request = report.SATURATION_PHASES.get(phase.name, phase.scenario.split(",")[0])
        if phase.name == "mix":
            request = report.TOTAL
        say(name, phase.name, _describe(result, request))
        results[phase.name] = result
    peak = max((r.get("service_peak_rss") or 0 for r in results.values()), default=0)
    return {"kind": kind, "url": host, "status": "ok", "phases": results, "peak_rss": peak or None}


def compare(options: Options) -> int:
    """Run the comparison and write its report; 0 if every target was benchmarked."""
    say = Progress()
    started_wall = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = options.out / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()  # before pinning ourselves
    service_cpus, generator_cpus, note = cpu_layout()
    if options.external:
        service_cpus, note = None, "external services: only Locust pinned; no service CPU/RSS"
    if generator_cpus:
        os.sched_setaffinity(0, generator_cpus)  # the runner, and what it starts, stay off
    g_phases = gateway_phases(options.preset, options.shape)
    s_phases = stub_phases(options.preset, options.shape)
    names = list(options.external) if options.external else options.targets
    estimate = planned_seconds(s_phases, g_phases, len(names))
    say(
        "compare",
        "start",
        f"{', '.join(names) or 'no targets'} ({options.preset_name}, "
        f"{options.shape}); at most ~{estimate / 60:.1f} min; report in {run_dir}",
    )
    say(
        "compare",
        "cpus",
        f"service {sorted(service_cpus or [])}, generator {sorted(generator_cpus or [])}: {note}",
    )
    idle_load = background_load()
    if idle_load > QUIET_LIMIT:
        say(
            "compare",
            "warning",
            f"{idle_load:.2f} cores already busy with other work: "
            "numbers will be noisy (levels with other load are flagged CONTENDED)",
        )
    summary: dict[str, Any] = {
        "background_load_cores": round(idle_load, 3),
        "schema": 1,
        "command": options.command,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started_wall)),
        "preset": options.preset_name,
        "settings": {
            "shape": options.shape,
            "preset": dataclasses.asdict(options.preset),
            "gateway_phases": [dataclasses.asdict(p) for p in g_phases],
            "stub_phases": [dataclasses.asdict(p) for p in s_phases],
            "gateway_env": _gateway_env(options),
            "external": options.external,
            "upstream_url": options.upstream_url,
            "locustfile": str(LOCUSTFILE.relative_to(REPO)),
        },
        "pinning": {
            "service_cpus": sorted(service_cpus) if service_cpus else None,
            "generator_cpus": sorted(generator_cpus) if generator_cpus else None,
            "note": note,
        },
        "machine": machine,
        "versions": versions(),
        "git": _git(),
        "targets": {},
    }
    targets: dict[str, Any] = summary["targets"]
    try:
        if options.external:
            _compare_external(options, g_phases, s_phases, run_dir, generator_cpus, targets, say)
        else:
            backend, backend_name = _backend()
            summary["settings"]["process_backend"] = backend_name
            _compare_local(
                options,
                backend,
                g_phases,
                s_phases,
                run_dir,
                service_cpus,
                generator_cpus,
                targets,
                say,
            )
    except KeyboardInterrupt:
        say("compare", "stop", "interrupted: writing the report of what ran")
        summary["interrupted"] = True
    return finish_report(summary, run_dir, options.out, started_wall, say)


def finish_report(
    summary: dict[str, Any], run_dir: Path, out: Path, started_wall: float, say: Progress
) -> int:
    """Write the report, point ``out/latest`` at it, print the table; the exit status."""
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    summary["duration_s"] = round(time.time() - started_wall, 1)
    say("report", "write", str(run_dir))
    goals = report.write_report(summary, run_dir)
    link = out / summary.get("latest_name", "latest")
    tmp = out / f".{link.name}.{os.getpid()}"
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    print()
    print(report.console_table(summary, goals))
    print(f"\nReport: {run_dir / 'index.html'}  (summary.md, summary.json beside it)")
    broken = [t for t, d in summary["targets"].items() if d.get("status") != "ok"]
    return 1 if broken or summary.get("interrupted") else 0


def _gateway_env(options: Options) -> dict[str, str]:
    return {
        "GATEWAY_WORKERS": str(options.workers),
        "GATEWAY_DB_POOL_SIZE": str(options.db_pool),
        "GATEWAY_UPSTREAM_POOL_SIZE": str(options.upstream_pool),
        "GATEWAY_ACCESS_LOG": "false",
    }


def _compare_local(
    options: Options,
    backend: SimpleNamespace,
    g_phases: Sequence[Phase],
    s_phases: Sequence[Phase],
    run_dir: Path,
    service_cpus: set[int] | None,
    generator_cpus: set[int] | None,
    targets: dict[str, Any],
    say: Progress,
) -> None:
    say("compare", "postgres", "starting")
    with backend.provide() as base_dsn:
        say("compare", "stub", "starting")
        with backend.start_stub(cpus=generator_cpus) as stub:
            say(STUB, "reference", f"{stub.url} (pid {stub.pid}), moved to the service CPU")
            with _pinned(stub.pid, service_cpus, generator_cpus):
                targets[STUB] = _run_phases(
                    STUB,
                    "reference",
                    stub.url,
                    s_phases,
                    out_dir=run_dir,
                    extra_env={},
                    generator_cpus=generator_cpus,
                    service_pids=[stub.pid],
                    peer_pids=[],
                    say=say,
                    wait_quiet=options.wait_quiet,
                )
            for impl in options.targets:
                targets[impl] = _one_local(
                    options,
                    backend,
                    impl,
                    base_dsn,
                    stub,
                    g_phases,
                    run_dir,
                    service_cpus,
                    generator_cpus,
                    say,
                )


def _one_local(
    options: Options,
    backend: SimpleNamespace,
    impl: str,
    base_dsn: str,
    stub: Any,
    g_phases: Sequence[Phase],
    run_dir: Path,
    service_cpus: set[int] | None,
    generator_cpus: set[int] | None,
    say: Progress,
) -> dict[str, Any]:
    say(impl, "start", "fresh database, starting the service")
    try:
        dsn = backend.create_database(base_dsn, f"triptych_loadtest_{impl}")
        gateway = backend.start_gateway(
            impl, dsn, admin_token=options.admin_token, env=_gateway_env(options), cpus=service_cpus
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        say(impl, "start", f"BROKEN: did not start: {first}")
        return {"kind": "gateway", "status": "broken", "error": f"did not start: {exc}"[:2000]}
    try:
        with gateway:
            return _verify_and_run(
                options, impl, gateway, stub, g_phases, run_dir, generator_cpus, say
            )
    finally:
        _keep_log(gateway, run_dir / impl / "service.log")


def _verify_and_run(
    options: Options,
    impl: str,
    gateway: Any,
    stub: Any,
    g_phases: Sequence[Phase],
    run_dir: Path,
    generator_cpus: set[int] | None,
    say: Progress,
) -> dict[str, Any]:
    say(impl, "verify", f"{gateway.url} (pid {gateway.pid})")
    checked = verify(gateway.url, options.admin_token, stub.url)
    if not checked["ok"]:
        failed = [f"{c['name']}: {c['detail']}" for c in checked["checks"] if not c["ok"]]
        say(impl, "verify", "BROKEN, not benchmarked: " + "; ".join(failed))
        return {
            "kind": "gateway",
            "status": "broken",
            "url": gateway.url,
            "verify": _public(checked),
        }
    say(impl, "verify", "passed: " + ", ".join(c["name"] for c in checked["checks"]))
    result = _run_phases(
        impl,
        "gateway",
        gateway.url,
        g_phases,
        out_dir=run_dir,
        extra_env=_locust_env(options.admin_token, stub.url, checked["key"]),
        generator_cpus=generator_cpus,
        service_pids=[gateway.pid],
        peer_pids=[stub.pid],
        say=say,
        wait_quiet=options.wait_quiet,
    )
    result["verify"] = _public(checked)
    result["pid"] = gateway.pid
    say(impl, "stop", "SIGTERM")
    return result


def _keep_log(process: Any, dest: Path) -> None:
    """Copy a started process's log (harness: ``log_path``) into the report."""
    source = getattr(process, "log_path", None) or getattr(process, "log", None)
    if source is not None and Path(source).is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)


def _public(checked: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in checked.items() if k != "key"}


def _locust_env(admin_token: str, upstream_url: str, key: str | None) -> dict[str, str]:
    env = {"TRIPTYCH_ADMIN_TOKEN": admin_token, "TRIPTYCH_UPSTREAM_URL": upstream_url}
    if key:
        env["TRIPTYCH_API_KEY"] = key
    return env


def _compare_external(
    options: Options,
    g_phases: Sequence[Phase],
    s_phases: Sequence[Phase],
    run_dir: Path,
    generator_cpus: set[int] | None,
    targets: dict[str, Any],
    say: Progress,
) -> None:
    assert options.upstream_url is not None
    stub_url = options.stub_url or options.upstream_url
    try:
        reachable = requests.get(f"{stub_url}/_stub/health", timeout=3).status_code == 200
    except requests.RequestException:
        reachable = False
    if reachable:
        targets[STUB] = _run_phases(
            STUB,
            "reference",
            stub_url,
            s_phases,
            out_dir=run_dir,
            extra_env={},
            generator_cpus=generator_cpus,
            service_pids=[],
            peer_pids=[],
            say=say,
            wait_quiet=options.wait_quiet,
        )
    else:
        say(
            STUB,
            "reference",
            f"{stub_url} unreachable from here: no direct reference (pass --stub-url)",
        )
    for name, url in options.external.items():
        say(name, "verify", url)
        checked = verify(url, options.admin_token, options.upstream_url)
        if not checked["ok"]:
            failed = [f"{c['name']}: {c['detail']}" for c in checked["checks"] if not c["ok"]]
            say(name, "verify", "BROKEN, not benchmarked: " + "; ".join(failed))
            targets[name] = {
                "kind": "gateway",
                "status": "broken",
                "url": url,
                "verify": _public(checked),
            }
            continue
        targets[name] = _run_phases(
            name,
            "gateway",
            url,
            g_phases,
            out_dir=run_dir,
            extra_env=_locust_env(options.admin_token, options.upstream_url, checked["key"]),
            generator_cpus=generator_cpus,
            service_pids=[],
            peer_pids=[],
            say=say,
            wait_quiet=options.wait_quiet,
        )
        targets[name]["verify"] = _public(checked)


def build_options(args: Any) -> Options:
    """Options from the parsed command line (see loadtest.__main__)."""
    preset_name = "smoke" if args.smoke else "quick" if args.quick else "default"
    preset = PRESETS[preset_name]
    if args.users:
        preset = dataclasses.replace(
            preset, levels=levels_up_to(args.users), constant_users=args.users
        )
    if args.duration:
        step = max(2.0, args.duration / len(preset.levels))
        preset = dataclasses.replace(preset, step_s=step, constant_s=args.duration)
    external: dict[str, str] = {}
    for item in args.external or []:
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise SystemExit(f"--external wants NAME=URL, got {item!r}")
        external[name] = url.rstrip("/")
    admin_token = args.admin_token or os.environ.get("TRIPTYCH_ADMIN_TOKEN") or ""
    upstream_url = args.upstream_url or os.environ.get("TRIPTYCH_UPSTREAM_URL")
    if external and (not admin_token or not upstream_url):
        raise SystemExit(
            "--external needs --admin-token (or TRIPTYCH_ADMIN_TOKEN) and "
            "--upstream-url (or TRIPTYCH_UPSTREAM_URL)"
        )
    if args.targets:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        unknown = [t for t in targets if t not in IMPLEMENTATIONS]
        if unknown:
            raise SystemExit(
                f"--targets: unknown {', '.join(unknown)}; known: {', '.join(IMPLEMENTATIONS)}"
            )
    else:
        targets = available_implementations()
    if args.out:
        out = Path(args.out)
    elif args.smoke:
        out = Path(tempfile.mkdtemp(prefix="triptych-smoke-"))
    else:
        out = REPO / "reports"
    return Options(
        targets=targets,
        preset_name=preset_name,
        preset=preset,
        shape=args.shape,
        out=out.resolve(),
        external=external,
        admin_token=admin_token or secrets.token_urlsafe(24),
        upstream_url=upstream_url.rstrip("/") if upstream_url else None,
        stub_url=args.stub_url,
        workers=args.workers,
        db_pool=args.db_pool,
        upstream_pool=args.upstream_pool,
        command="python -m loadtest " + " ".join(sys.argv[1:]),
        wait_quiet=args.wait_quiet,
    )
