"""compose.yaml and the Dockerfiles against the gateways' launch interface, without Docker.

Each check is a function returning a list of problems. The ``test_*_holds`` tests run it on
the real files and expect none; ``test_check_catches`` runs it on a deliberately broken copy and
expects at least one, so that no check can pass vacuously.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
IMPLS = ("asyncio", "trio", "curio")
GATEWAYS = {f"gateway-{impl}": impl for impl in IMPLS}
GATEWAY_DOCKERFILES = {impl: ROOT / "services" / impl / "Dockerfile" for impl in IMPLS}
STUB_DOCKERFILE = ROOT / "shared" / "upstream_stub.Dockerfile"
LOCUST_DOCKERFILE = ROOT / "loadtest" / "Dockerfile"
LOCUSTFILE = "loadtest/locustfile.py"
LOCUST_SERVICES = ("locust-master", "locust-worker")

Compose = dict[str, Any]
Dockerfiles = dict[str, str]


# --- reading the files ---------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file; comments and blank lines skipped."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        env[key.strip()] = value.strip().strip("'\"")
    return env


_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_]\w*))")


class InterpolationError(ValueError):
    """A required variable (``${VAR:?message}``) has no value."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ``$$``, ``$VAR``, ``${VAR}`` with ``:-  -  :?  ?``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3)
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"{name}: {arg}")
        return value or ""

    return _VAR.sub(replace, text)


def variables(text: str) -> Iterator[tuple[str, str | None]]:
    """``(name, operator)`` of every variable reference in ``text``."""
    for match in _VAR.finditer(text):
        if match.group(0) != "$$":
            yield match.group(1) or match.group(4), match.group(2)


def resolve(node: Any, env: dict[str, str]) -> Any:
    """``node`` with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    return node


def load_compose(env: dict[str, str]) -> Compose:
    """compose.yaml, anchors merged and variables resolved against ``env``."""
    return resolve(yaml.safe_load(COMPOSE.read_text()), env)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, list or mapping form, as a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def container_ports(service: dict[str, Any]) -> list[int]:
    """The container (target) side of every ``ports`` entry, short or long syntax."""
    targets = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            targets.append(int(entry["target"]))
        else:
            target = str(entry).rsplit(":", 1)[-1].split("/")[0]
            targets.append(int(target.split("-")[0]))
    return targets


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def seconds(duration: str | int | float) -> float:
    """A compose duration (``1m30s``, ``15s``, ``500ms``) in seconds."""
    text = str(duration).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a compose duration: {duration!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuations joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The instructions of the last stage (from its FROM on)."""
    steps = instructions(dockerfile)
    starts = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    return steps[starts[-1] :] if starts else steps


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form instruction, or None for shell form."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(example_env: dict[str, str]) -> Compose:
    """compose.yaml as `cp .env.example .env && docker compose up` sees it."""
    return load_compose(example_env)


@pytest.fixture(scope="module")
def dockerfiles() -> Dockerfiles:
    files = {**GATEWAY_DOCKERFILES, "stub": STUB_DOCKERFILE, "locust": LOCUST_DOCKERFILE}
    return {name: path.read_text() for name, path in files.items()}


@pytest.fixture(scope="module")
def settings_module() -> Any:
    """``gateway_core.settings``: the gateways' one table of environment variables."""
    import gateway_core.settings

    return gateway_core.settings


@pytest.fixture(scope="module")
def setting_names(settings_module: Any) -> frozenset[str]:
    """The environment variables of the gateways' settings table."""
    names = frozenset(entry.env for entry in settings_module.SETTINGS)
    assert {"DATABASE_URL", "GATEWAY_PORT", "GATEWAY_GRACE_S"} <= names
    return names


@pytest.fixture(scope="module")
def setting_defaults(settings_module: Any) -> dict[str, str | None]:
    """Variable name to default (None: required), for the settings that say."""
    return {
        entry.env: getattr(entry, "default", None)
        for entry in settings_module.SETTINGS
        if hasattr(entry, "default")
    }


# --- the checks ----------------------------------------------------------------------------


def check_gateway_services(compose: Compose) -> list[str]:
    """Exactly the three gateways, each built from its own Dockerfile, none pinned to a name."""
    services = compose.get("services", {})
    problems = [f"missing service {name}" for name in GATEWAYS if name not in services]
    for name, service in services.items():
        if "container_name" in service:
            problems.append(f"{name}: container_name prevents --scale")
    for name, impl in GATEWAYS.items():
        build = services.get(name, {}).get("build", {})
        if build.get("dockerfile") != f"services/{impl}/Dockerfile" or build.get("context") != ".":
            problems.append(f"{name}: build must be context . and services/{impl}/Dockerfile")
    return problems


def check_gateway_env(compose: Compose, setting_names: frozenset[str]) -> list[str]:
    """Every GATEWAY_* and DATABASE_URL a gateway is given is a documented setting."""
    problems = []
    for name in GATEWAYS:
        env = environment(compose["services"][name])
        for var in env:
            if (var.startswith("GATEWAY_") or var == "DATABASE_URL") and var not in setting_names:
                problems.append(f"{name}: {var} is not in the settings table")
        for required in ("DATABASE_URL", "GATEWAY_ADMIN_TOKEN", "GATEWAY_PORT", "GATEWAY_GRACE_S"):
            if not env.get(required):
                problems.append(f"{name}: {required} is not set")
        if env.get("GATEWAY_HOST") != "0.0.0.0":
            problems.append(f"{name}: GATEWAY_HOST must be 0.0.0.0 in a container")
        if len(env.get("GATEWAY_ADMIN_TOKEN", "")) < 16:
            problems.append(f"{name}: GATEWAY_ADMIN_TOKEN shorter than 16 characters")
        if "@postgres:" not in env.get("DATABASE_URL", ""):
            problems.append(f"{name}: DATABASE_URL does not point at the postgres service")
    return problems


def check_gateway_settings_load(
    compose: Compose, load: Callable[[dict[str, str]], Any]
) -> list[str]:
    """Each gateway's environment parses: the process would start, not exit with status 2."""
    problems = []
    for name in GATEWAYS:
        try:
            load(environment(compose["services"][name]))
        except Exception as exc:
            problems.append(f"{name}: {exc}")
    return problems


def check_compose_defaults(text: str, defaults: dict[str, str | None]) -> list[str]:
    """A default written in compose.yaml for a gateway setting is that setting's default."""
    problems = []
    for match in _VAR.finditer(text):
        name, op, default = match.group(1), match.group(2), match.group(3)
        if op in (":-", "-") and defaults.get(name) is not None and default != defaults[name]:
            problems.append(f"{name}: compose default {default!r}, settings {defaults[name]!r}")
    return problems


def check_gateway_ports(compose: Compose) -> list[str]:
    """Each gateway publishes exactly its GATEWAY_PORT."""
    problems = []
    for name in GATEWAYS:
        service = compose["services"][name]
        port = int(environment(service).get("GATEWAY_PORT") or 0)
        targets = container_ports(service)
        if targets != [port]:
            problems.append(f"{name}: publishes {targets}, GATEWAY_PORT is {port}")
    return problems


def check_gateway_healthchecks(compose: Compose) -> list[str]:
    """Each gateway's health check asks /_gateway/health on its GATEWAY_PORT, in exec form."""
    problems = []
    for name in GATEWAYS:
        service = compose["services"][name]
        port = environment(service).get("GATEWAY_PORT")
        test = service.get("healthcheck", {}).get("test")
        if not isinstance(test, list) or test[:1] != ["CMD"]:
            problems.append(f"{name}: healthcheck.test must be a [CMD, ...] list")
            continue
        urls = re.findall(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/\S*?)['\"]", " ".join(test))
        if (port, "/_gateway/health") not in urls:
            problems.append(f"{name}: healthcheck does not GET :{port}/_gateway/health ({urls})")
    return problems


def check_gateway_shutdown(compose: Compose) -> list[str]:
    """stop_grace_period exceeds the drain grace period; an init forwards SIGTERM."""
    problems = []
    for name in GATEWAYS:
        service = compose["services"][name]
        grace = float(environment(service).get("GATEWAY_GRACE_S") or 10)
        stop = seconds(service.get("stop_grace_period", "10s"))
        if not stop > grace:
            problems.append(f"{name}: stop_grace_period {stop}s <= GATEWAY_GRACE_S {grace}s")
        if service.get("init") is not True:
            problems.append(f"{name}: init: true missing (signal forwarding, reaping workers)")
    return problems


def check_gateway_depends_on(compose: Compose) -> list[str]:
    """Each gateway waits for a healthy Postgres, which has a pg_isready check and a volume."""
    problems = []
    for name in GATEWAYS:
        depends = compose["services"][name].get("depends_on", {})
        if not isinstance(depends, dict) or depends.get("postgres", {}).get("condition") != (
            "service_healthy"
        ):
            problems.append(f"{name}: depends_on postgres is not condition: service_healthy")
    postgres = compose["services"].get("postgres", {})
    if "pg_isready" not in json.dumps(postgres.get("healthcheck", {}).get("test")):
        problems.append("postgres: no pg_isready healthcheck")
    named = set(compose.get("volumes") or {})
    mounts = [str(v).split(":")[0] for v in postgres.get("volumes", [])]
    if not named & set(mounts):
        problems.append("postgres: data not on a named volume")
    return problems


def check_locust(compose: Compose) -> list[str]:
    """Master and workers under the loadtest profile, on loadtest/locustfile.py, wired up."""
    services = compose.get("services", {})
    problems = []
    for name in LOCUST_SERVICES:
        service = services.get(name)
        if service is None:
            problems.append(f"missing service {name}")
            continue
        if service.get("profiles") != ["loadtest"]:
            problems.append(f"{name}: profiles must be [loadtest]")
        command = service.get("command", [])
        command = command.split() if isinstance(command, str) else command
        if LOCUSTFILE not in command or command[command.index(LOCUSTFILE) - 1] != "-f":
            problems.append(f"{name}: command does not run -f {LOCUSTFILE}")
        env = environment(service)
        if not env.get("TRIPTYCH_ADMIN_TOKEN"):
            problems.append(f"{name}: TRIPTYCH_ADMIN_TOKEN not set")
        if env.get("TRIPTYCH_UPSTREAM_URL") != "http://stub:9000":
            problems.append(f"{name}: TRIPTYCH_UPSTREAM_URL is not the stub's http://stub:9000")
    master = services.get("locust-master", {})
    worker = services.get("locust-worker", {})
    if "--master" not in master.get("command", []) or 8089 not in container_ports(master):
        problems.append("locust-master: not --master with its web UI (8089) published")
    worker_command = " ".join(worker.get("command", []))
    if "--worker" not in worker_command or "--master-host locust-master" not in worker_command:
        problems.append("locust-worker: not --worker --master-host locust-master")
    if worker.get("ports"):
        problems.append("locust-worker: published ports would break --scale")
    return problems


def check_stub(compose: Compose) -> list[str]:
    """The stub is built from its Dockerfile and health-checked on /_stub/health."""
    stub = compose.get("services", {}).get("stub", {})
    problems = []
    if stub.get("build", {}).get("dockerfile") != "shared/upstream_stub.Dockerfile":
        problems.append("stub: not built from shared/upstream_stub.Dockerfile")
    if "127.0.0.1:9000/_stub/health" not in json.dumps(stub.get("healthcheck", {})):
        problems.append("stub: healthcheck does not GET :9000/_stub/health")
    return problems


def check_dockerfiles(dockerfiles: Dockerfiles) -> list[str]:
    """Exec-form CMD, a non-root USER and (gateways, stub) a HEALTHCHECK on the right path."""
    health = {impl: "/_gateway/health" for impl in IMPLS}
    health["stub"] = "127.0.0.1:9000/_stub/health"
    problems = []
    for name, text in dockerfiles.items():
        stage = final_stage(text)
        cmds = [args for keyword, args in stage if keyword in ("CMD", "ENTRYPOINT")]
        if not cmds or any(exec_form(args) is None for args in cmds):
            problems.append(f"{name}: CMD/ENTRYPOINT missing or not in exec form")
        users = [args.split(":")[0] for keyword, args in stage if keyword == "USER"]
        if not users or users[-1] in ("root", "0"):
            problems.append(f"{name}: the final stage does not switch to a non-root USER")
        if name in health:
            checks = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
            if len(checks) != 1 or health[name] not in checks[0]:
                problems.append(f"{name}: no HEALTHCHECK on {health[name]}")
            elif exec_form(checks[0][checks[0].index("CMD ") + 4 :]) is None:
                problems.append(f"{name}: HEALTHCHECK CMD not in exec form")
    for impl in IMPLS:
        stage = final_stage(dockerfiles[impl])
        cmd = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
        if cmd != [["python", "-m", f"gateway_{impl}"]]:
            problems.append(f"{impl}: CMD is not python -m gateway_{impl}")
        # The health check reads GATEWAY_PORT; the image sets it and exposes that port.
        env = " ".join(args for keyword, args in stage if keyword == "ENV")
        expose = [args for keyword, args in stage if keyword == "EXPOSE"]
        if "GATEWAY_PORT=8080" not in env.split() or expose != ["8080"]:
            problems.append(f"{impl}: image does not set GATEWAY_PORT=8080 and EXPOSE 8080")
    return problems


def check_dockerfiles_mirrored(dockerfiles: Dockerfiles) -> list[str]:
    """The three gateway Dockerfiles differ only in the implementation's name, and each
    installs only gateway-core and its own service."""
    problems = []
    reference = dockerfiles["asyncio"]
    for impl in IMPLS:
        text = dockerfiles[impl]
        if text.replace(impl, "asyncio") != reference:
            problems.append(f"{impl}: Dockerfile is not services/asyncio/Dockerfile renamed")
        installs = [args for keyword, args in instructions(text) if "pip install" in args]
        others = [other for other in IMPLS if other != impl]
        if not installs or any(f"services/{o}" in args for args in installs for o in others):
            problems.append(f"{impl}: pip install missing or installs another service")
        if not any(f"./shared ./services/{impl}" in args for args in installs):
            problems.append(f"{impl}: does not pip install ./shared ./services/{impl}")
    return problems


# --- the tests on the real files -----------------------------------------------------------


def check_env_example(text: str, example_env: dict[str, str]) -> list[str]:
    """`cp .env.example .env` is enough: every variable compose.yaml needs without a default is
    in .env.example, everything in .env.example is used, and the defaults agree with it."""
    refs = list(_VAR.finditer(text))
    used = {m.group(1) or m.group(4) for m in refs if m.group(0) != "$$"}
    problems = [f"{name}: in .env.example, unused" for name in sorted(set(example_env) - used)]
    for match in refs:
        if match.group(0) == "$$":
            continue
        name, op, default = match.group(1) or match.group(4), match.group(2), match.group(3)
        if op not in (":-", "-") and name not in example_env:
            problems.append(f"{name}: needed without a default, missing from .env.example")
        if op in (":-", "-") and name in example_env and default != example_env[name]:
            problems.append(f"{name}: default {default!r}, .env.example {example_env[name]!r}")
    return problems


def test_env_example_holds(example_env: dict[str, str]) -> None:
    assert check_env_example(COMPOSE.read_text(), example_env) == []


def test_admin_token_is_required() -> None:
    """Without .env, compose refuses to start instead of running with a made-up token."""
    with pytest.raises(InterpolationError, match="GATEWAY_ADMIN_TOKEN"):
        load_compose({})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("${GATEWAY_GRACE_S:-10}", "${GATEWAY_GRACE_S:-12}"),
        ("${GATEWAY_GRACE_S:-10}", "${GATEWAY_GRACE_PERIOD}"),
        ("${LOCUST_WEB_PORT:-8089}", "8089"),
    ],
)
def test_env_example_check_catches(example_env: dict[str, str], old: str, new: str) -> None:
    text = COMPOSE.read_text()
    assert old in text
    assert check_env_example(text.replace(old, new), example_env)


def test_gateway_services_hold(compose: Compose) -> None:
    assert check_gateway_services(compose) == []


def test_gateway_env_holds(compose: Compose, setting_names: frozenset[str]) -> None:
    assert check_gateway_env(compose, setting_names) == []


def test_gateway_settings_load(compose: Compose, settings_module: Any) -> None:
    assert check_gateway_settings_load(compose, settings_module.load_settings) == []


def test_compose_defaults_are_the_settings_defaults(
    setting_defaults: dict[str, str | None],
) -> None:
    assert check_compose_defaults(COMPOSE.read_text(), setting_defaults) == []


def test_gateway_ports_hold(compose: Compose) -> None:
    assert check_gateway_ports(compose) == []


def test_gateway_healthchecks_hold(compose: Compose) -> None:
    assert check_gateway_healthchecks(compose) == []


def test_gateway_shutdown_holds(compose: Compose) -> None:
    assert check_gateway_shutdown(compose) == []


def test_gateway_shutdown_holds_with_defaults(example_env: dict[str, str]) -> None:
    """Also with nothing but the admin token set: the defaults in compose.yaml agree."""
    bare = load_compose({"GATEWAY_ADMIN_TOKEN": example_env["GATEWAY_ADMIN_TOKEN"]})
    assert check_gateway_shutdown(bare) == []


def test_gateway_depends_on_holds(compose: Compose) -> None:
    assert check_gateway_depends_on(compose) == []


def test_locust_holds(compose: Compose) -> None:
    assert check_locust(compose) == []


def test_stub_holds(compose: Compose) -> None:
    assert check_stub(compose) == []


def test_dockerfiles_hold(dockerfiles: Dockerfiles) -> None:
    assert check_dockerfiles(dockerfiles) == []


def test_dockerfiles_mirrored(dockerfiles: Dockerfiles) -> None:
    assert check_dockerfiles_mirrored(dockerfiles) == []


# --- each check catches a broken copy ------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Compose], None]:
    """A mutation setting ``a/b/c`` to ``value`` (None deletes it)."""

    def mutate(data: Compose) -> None:
        *parents, last = path.split("/")
        node = data
        for key in parents:
            node = node[int(key) if isinstance(node, list) else key]
        key: Any = int(last) if isinstance(node, list) else last
        if value is None:
            del node[key]
        else:
            node[key] = value

    return mutate


def _dockerfile(name: str, old: str, new: str) -> Callable[[Dockerfiles], None]:
    def mutate(files: Dockerfiles) -> None:
        assert old in files[name], old
        files[name] = files[name].replace(old, new)

    return mutate


GA = "services/gateway-asyncio"
COMPOSE_MUTANTS: list[tuple[Callable[..., list[str]], Callable[[Compose], None]]] = [
    (check_gateway_services, _set("services/gateway-trio", None)),
    (check_gateway_services, _set(f"{GA}/container_name", "gw")),
    (check_gateway_services, _set(f"{GA}/build/dockerfile", "services/trio/Dockerfile")),
    (check_gateway_env, _set(f"{GA}/environment/GATEWAY_TYPO_S", "1")),
    (check_gateway_env, _set(f"{GA}/environment/GATEWAY_HOST", "127.0.0.1")),
    (check_gateway_env, _set(f"{GA}/environment/GATEWAY_ADMIN_TOKEN", "short")),
    (check_gateway_env, _set(f"{GA}/environment/DATABASE_URL", None)),
    (check_gateway_settings_load, _set(f"{GA}/environment/DATABASE_URL", "mysql://x")),
    (check_gateway_settings_load, _set(f"{GA}/environment/GATEWAY_LOG_LEVEL", "verbose")),
    (check_gateway_ports, _set(f"{GA}/environment/GATEWAY_PORT", "9090")),
    (check_gateway_ports, _set(f"{GA}/ports", ["8081:80"])),
    (check_gateway_healthchecks, _set(f"{GA}/healthcheck/test", ["CMD-SHELL", "true"])),
    (
        check_gateway_healthchecks,
        _set(f"{GA}/healthcheck/test/3", "urlopen('http://127.0.0.1:8080/_gateway/ready')"),
    ),
    (check_gateway_healthchecks, _set(f"{GA}/environment/GATEWAY_PORT", "8081")),
    (check_gateway_shutdown, _set(f"{GA}/stop_grace_period", "10s")),
    (check_gateway_shutdown, _set(f"{GA}/environment/GATEWAY_GRACE_S", "30")),
    (check_gateway_shutdown, _set(f"{GA}/init", None)),
    (check_gateway_depends_on, _set(f"{GA}/depends_on/postgres/condition", "service_started")),
    (check_gateway_depends_on, _set("services/postgres/healthcheck", None)),
    (check_gateway_depends_on, _set("volumes", None)),
    (check_locust, _set("services/locust-worker/profiles", None)),
    (check_locust, _set("services/locust-master/command/1", "locustfile.py")),
    (check_locust, _set("services/locust-worker/command", ["--worker"])),
    (check_locust, _set("services/locust-worker/ports", ["8090:8089"])),
    (check_locust, _set("services/locust-master/ports", [])),
    (check_locust, _set("services/locust-worker/environment/TRIPTYCH_UPSTREAM_URL", "x")),
    (check_stub, _set("services/stub/healthcheck", None)),
]

DOCKERFILE_MUTANTS: list[tuple[Callable[[Dockerfiles], list[str]], Callable[..., None]]] = [
    (
        check_dockerfiles,
        _dockerfile("trio", 'CMD ["python", "-m", "gateway_trio"]', "CMD python -m gateway_trio"),
    ),
    (check_dockerfiles, _dockerfile("curio", "USER 10001:10001", "USER root")),
    (check_dockerfiles, _dockerfile("stub", "USER 10001:10001", "")),
    (check_dockerfiles, _dockerfile("asyncio", "HEALTHCHECK", "# HEALTHCHECK")),
    (check_dockerfiles, _dockerfile("stub", "/_stub/health", "/health")),
    (check_dockerfiles, _dockerfile("locust", 'ENTRYPOINT ["locust"]', "ENTRYPOINT locust")),
    (check_dockerfiles, _dockerfile("trio", 'gateway_trio"]', 'gateway_asyncio"]')),
    (check_dockerfiles, _dockerfile("curio", "GATEWAY_PORT=8080", "GATEWAY_PORT=9090")),
    (check_dockerfiles_mirrored, _dockerfile("curio", "PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0")),
    (
        check_dockerfiles_mirrored,
        _dockerfile(
            "trio", "./shared ./services/trio", "./shared ./services/trio ./services/curio"
        ),
    ),
]


def test_compose_defaults_check_catches() -> None:
    text = COMPOSE.read_text().replace("${GATEWAY_SYNC_MS:-100}", "${GATEWAY_SYNC_MS:-50}")
    assert check_compose_defaults(text, {"GATEWAY_SYNC_MS": "100"})


@pytest.mark.parametrize(
    ("check", "mutate"),
    COMPOSE_MUTANTS + DOCKERFILE_MUTANTS,
    ids=[
        f"{check.__name__}-{i}" for i, (check, _) in enumerate(COMPOSE_MUTANTS + DOCKERFILE_MUTANTS)
    ],
)
def test_check_catches(
    check: Callable[..., list[str]],
    mutate: Callable[[Any], None],
    compose: Compose,
    dockerfiles: Dockerfiles,
    request: pytest.FixtureRequest,
) -> None:
    """Every check reports a deliberately broken copy of what it checks."""
    if check in (check_dockerfiles, check_dockerfiles_mirrored):
        broken: Any = dict(dockerfiles)
        mutate(broken)
        assert check(broken)
        return
    broken = copy.deepcopy(compose)
    mutate(broken)
    if check is check_gateway_settings_load:
        assert check(broken, request.getfixturevalue("settings_module").load_settings)
    elif check is check_gateway_env:
        # The real file's names stand in for the settings table here.
        assert check(broken, frozenset(environment(compose["services"]["gateway-asyncio"])))
    else:
        assert check(broken)
