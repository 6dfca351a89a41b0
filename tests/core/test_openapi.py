"""The spec (shared/openapi.yaml) is valid OpenAPI 3.1, covers the brief, and harness.spec works.

No event loop, no database.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from harness.spec import SPEC_PATH, assert_conforms, load_spec, path_template, schema_validator

SPEC_FILE = Path(__file__).resolve().parent.parent.parent / "shared" / "openapi.yaml"

ADMIN = "/_gateway/admin"
REQUIRED_OPERATIONS = [
    ("post", f"{ADMIN}/keys"),
    ("get", f"{ADMIN}/keys"),
    ("get", f"{ADMIN}/keys/{{id}}"),
    ("patch", f"{ADMIN}/keys/{{id}}"),
    ("delete", f"{ADMIN}/keys/{{id}}"),
    ("get", f"{ADMIN}/keys/{{id}}/usage"),
    ("post", f"{ADMIN}/routes"),
    ("get", f"{ADMIN}/routes"),
    ("get", f"{ADMIN}/routes/{{id}}"),
    ("patch", f"{ADMIN}/routes/{{id}}"),
    ("delete", f"{ADMIN}/routes/{{id}}"),
    ("get", "/_gateway/health"),
    ("get", "/_gateway/ready"),
    ("get", "/_gateway/metrics"),
    ("get", "/_gateway/debug/tasks"),
    *[(m, "/{path}") for m in ("get", "post", "put", "patch", "delete", "head", "options")],
]
REQUIRED_SCHEMAS = [
    "KeyCreate",
    "KeyUpdate",
    "Key",
    "KeyCreated",
    "KeyList",
    "Usage",
    "RouteCreate",
    "RouteUpdate",
    "Route",
    "RouteList",
    "AggregatePart",
    "AggregateResult",
    "Problem",
    "TaskNode",
]
NOW = "2025-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC_FILE.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


# ------------------------------------------------------------------------------ the spec


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["version"] == "0.1.0"
    validate(spec)


def test_harness_reads_the_same_file() -> None:
    assert SPEC_PATH == SPEC_FILE


@pytest.mark.parametrize(("method", "path"), REQUIRED_OPERATIONS)
def test_operation_exists(spec: dict[str, Any], method: str, path: str) -> None:
    assert path in spec["paths"], f"{path} missing"
    assert method in spec["paths"][path], f"{method.upper()} {path} missing"


def test_operation_ids_unique(spec: dict[str, Any]) -> None:
    ids = [
        op["operationId"]
        for item in spec["paths"].values()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete", "head", "options"}
    ]
    assert len(ids) == len(set(ids))


def test_admin_operations_need_the_admin_token(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        if path.startswith(ADMIN) or path == "/_gateway/debug/tasks":
            for method, op in item.items():
                if isinstance(op, dict) and "responses" in op:
                    assert op["security"] == [{"adminToken": []}], (method, path)
                    assert "401" in op["responses"], (method, path)


def test_data_plane_is_marked_catch_all(spec: dict[str, Any]) -> None:
    assert spec["paths"]["/{path}"].get("x-catch-all") is True


@pytest.mark.parametrize("name", REQUIRED_SCHEMAS)
def test_required_schema_exists(spec: dict[str, Any], name: str) -> None:
    assert name in spec["components"]["schemas"]


def test_component_schemas_are_valid_2020_12(spec: dict[str, Any]) -> None:
    for name, schema in spec["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # pragma: no cover - message only
            raise AssertionError(f"components.schemas.{name}: {exc}") from exc


def test_schema_examples_validate(spec: dict[str, Any]) -> None:
    for name, schema in spec["components"]["schemas"].items():
        for example in schema.get("examples", []):
            schema_validator(name).validate(example)


# ------------------------------------------------------------------------------ schema rules


def _valid(name: str, instance: Any) -> bool:
    return schema_validator(name).is_valid(instance)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"name": "k", "rate_limit": 1}, True),
        ({"name": "k", "rate_limit": 1, "routes": None, "expires_at": None}, True),
        ({"name": "k", "rate_limit": 1, "expires_at": NOW, "rate_window_s": 86400}, True),
        ({"name": "k"}, False),
        ({"name": "", "rate_limit": 1}, False),
        ({"name": "k", "rate_limit": 0}, False),
        ({"name": "k", "rate_limit": 1, "rate_window_s": 86401}, False),
        ({"name": "k", "rate_limit": 1, "expires_at": "tomorrow"}, False),
        ({"name": "k", "rate_limit": 1, "extra": 1}, False),
    ],
)
def test_key_create_rules(body: dict[str, Any], ok: bool) -> None:
    assert _valid("KeyCreate", body) is ok


PART = {"name": "a", "upstream_url": "http://127.0.0.1:9000/a", "timeout_ms": 500}


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"name": "orders", "path_prefix": "/orders", "upstream_url": "https://u.example"}, True),
        ({"name": "root", "path_prefix": "/", "upstream_url": "http://[::1]:8000/x"}, True),
        ({"name": "agg", "path_prefix": "/agg", "kind": "aggregate", "parts": [PART]}, True),
        (
            {"name": "agg", "path_prefix": "/a", "kind": "aggregate", "parts": [PART]}
            | {"upstream_url": None},
            True,
        ),
        ({"name": "orders", "path_prefix": "/orders"}, False),  # proxy without upstream_url
        ({"name": "agg", "path_prefix": "/agg", "kind": "aggregate"}, False),  # no parts
        ({"name": "agg", "path_prefix": "/agg", "kind": "aggregate", "parts": []}, False),
        ({"name": "x", "path_prefix": "/x", "upstream_url": "http://u", "parts": [PART]}, False),
        ({"name": "x", "path_prefix": "/_gateway/x", "upstream_url": "http://u"}, False),
        ({"name": "x", "path_prefix": "/_gateway", "upstream_url": "http://u"}, False),
        ({"name": "x", "path_prefix": "/_gatewayx", "upstream_url": "http://u"}, True),
        ({"name": "x", "path_prefix": "x", "upstream_url": "http://u"}, False),
        ({"name": "x", "path_prefix": "/x/", "upstream_url": "http://u"}, False),
        ({"name": "x", "path_prefix": "/x", "upstream_url": "ftp://u"}, False),
        ({"name": "x", "path_prefix": "/x", "upstream_url": "http://user:pw@u/"}, False),
        ({"name": "-x", "path_prefix": "/x", "upstream_url": "http://u"}, False),
        ({"name": "x", "path_prefix": "/x", "upstream_url": "http://u", "retries": 6}, False),
        ({"name": "x", "path_prefix": "/x", "upstream_url": "http://u", "timeout_ms": 0}, False),
    ],
)
def test_route_create_rules(body: dict[str, Any], ok: bool) -> None:
    assert _valid("RouteCreate", body) is ok


def test_updates_need_at_least_one_field() -> None:
    assert not _valid("KeyUpdate", {})
    assert not _valid("RouteUpdate", {})
    assert _valid("KeyUpdate", {"routes": None})
    assert _valid("RouteUpdate", {"retries": 2})


def test_task_node_is_recursive() -> None:
    tree = {"name": "root", "children": [{"name": "a", "state": "running", "children": []}]}
    assert _valid("TaskNode", tree)
    assert not _valid("TaskNode", {"name": "root", "children": [{"name": "a"}]})


# ------------------------------------------------------------------------------ harness.spec


def _response(
    method: str,
    path: str,
    status: int,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = "req-1",
) -> httpx.Response:
    all_headers = {"X-Request-ID": request_id} if request_id else {}
    all_headers |= headers or {}
    request = httpx.Request(method, f"http://gw{path}")
    if json is not None:
        return httpx.Response(status, json=json, headers=all_headers, request=request)
    return httpx.Response(status, content=content, headers=all_headers, request=request)


def _problem(status: int, **extra: Any) -> dict[str, Any]:
    base = {"type": "about:blank", "title": "t", "status": status, "detail": "d"}
    return base | {"request_id": "req-1"} | extra


def _key(**overrides: Any) -> dict[str, Any]:
    key = {
        "id": str(uuid.uuid4()),
        "name": "k",
        "prefix": "tk_3fA9",
        "rate_limit": 100,
        "rate_window_s": 60,
        "routes": None,
        "expires_at": None,
        "revoked_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return key | overrides


HEALTH = {"status": "ok", "implementation": "trio", "version": "0.1.0"}
RL = {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": '"default";r=99;t=42'}


def test_path_template() -> None:
    kid = str(uuid.uuid4())
    assert path_template("/_gateway/health") == "/_gateway/health"
    assert path_template(f"/_gateway/admin/keys/{kid}") == "/_gateway/admin/keys/{id}"
    assert path_template(f"/_gateway/admin/keys/{kid}/usage") == "/_gateway/admin/keys/{id}/usage"
    assert path_template("/_gateway/admin/keys?limit=5") == "/_gateway/admin/keys"
    assert path_template("http://gw:8080/orders/7?x=1") == "/{path}"
    assert path_template("/") == "/{path}"
    assert path_template("/_gatewayx/a") == "/{path}"


@pytest.mark.parametrize("path", ["/_gateway", "/_gateway/nope", "/_gateway/admin/keys/a/b"])
def test_catch_all_never_matches_reserved_paths(path: str) -> None:
    with pytest.raises(AssertionError, match="no path in the spec"):
        path_template(path)


def test_health_conforms() -> None:
    assert_conforms(
        "GET", "/_gateway/health", _response("GET", "/_gateway/health", 200, json=HEALTH)
    )


def test_health_with_wrong_body_fails_with_its_path() -> None:
    bad = HEALTH | {"implementation": "gevent"}
    response = _response("GET", "/_gateway/health", 200, json=bad)
    with pytest.raises(AssertionError, match=r"body\.implementation: 'gevent' is not one of"):
        assert_conforms("GET", "/_gateway/health", response)


def test_undocumented_status_fails() -> None:
    response = _response("GET", "/_gateway/health", 418, json=HEALTH)
    with pytest.raises(AssertionError, match="status 418 is not documented"):
        assert_conforms("GET", "/_gateway/health", response)


def test_wrong_media_type_fails() -> None:
    response = _response(
        "GET", "/_gateway/health", 200, content=b"ok", headers={"Content-Type": "text/plain"}
    )
    with pytest.raises(AssertionError, match="'text/plain' is not documented"):
        assert_conforms("GET", "/_gateway/health", response)


def test_missing_request_id_header_fails() -> None:
    response = _response("GET", "/_gateway/health", 200, json=HEALTH, request_id=None)
    with pytest.raises(AssertionError, match="missing required header X-Request-ID"):
        assert_conforms("GET", "/_gateway/health", response)


def test_metrics_text_conforms() -> None:
    response = _response(
        "GET",
        "/_gateway/metrics",
        200,
        content=b"# TYPE x counter\nx 1\n",
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
    assert_conforms("GET", "/_gateway/metrics", response)


def test_key_created_and_listed_conform() -> None:
    created = _key(key="tk_3fA9" + "x" * 30)
    path = "/_gateway/admin/keys"
    location = {"Location": f"{path}/{created['id']}"}
    assert_conforms("POST", path, _response("POST", path, 201, json=created, headers=location))
    page = {"items": [_key(), _key(revoked_at=NOW)], "next_cursor": None}
    assert_conforms("GET", path, _response("GET", path, 200, json=page))


def test_key_created_without_plaintext_fails() -> None:
    path = "/_gateway/admin/keys"
    key = _key()
    response = _response("POST", path, 201, json=key, headers={"Location": f"{path}/{key['id']}"})
    with pytest.raises(AssertionError, match="'key' is a required property"):
        assert_conforms("POST", path, response)


def test_revoke_is_204_without_body() -> None:
    path = f"/_gateway/admin/keys/{uuid.uuid4()}"
    assert_conforms("DELETE", path, _response("DELETE", path, 204))
    with pytest.raises(AssertionError, match="documented without a body"):
        assert_conforms("DELETE", path, _response("DELETE", path, 204, content=b"{}"))


def test_validation_problem_conforms_and_needs_errors() -> None:
    path = "/_gateway/admin/routes"
    errors = [{"field": "parts.0.upstream_url", "message": "must be http or https"}]
    problem = _problem(422, errors=errors)
    ctype = {"Content-Type": "application/problem+json"}

    def respond(body: dict[str, Any]) -> httpx.Response:
        return _response("POST", path, 422, content=_json_bytes(body), headers=ctype)

    assert_conforms("POST", path, respond(problem))
    with pytest.raises(AssertionError, match="'errors' is a required property"):
        assert_conforms("POST", path, respond(_problem(422)))


def test_problem_as_plain_json_fails() -> None:
    path = f"/_gateway/admin/routes/{uuid.uuid4()}"
    response = _response("GET", path, 404, json=_problem(404))
    with pytest.raises(AssertionError, match="'application/json' is not documented"):
        assert_conforms("GET", path, response)


def test_problem_status_must_match_http_status() -> None:
    path = f"/_gateway/admin/routes/{uuid.uuid4()}"
    ctype = {"Content-Type": "application/problem+json"}
    response = _response("GET", path, 404, content=_json_bytes(_problem(400)), headers=ctype)
    with pytest.raises(AssertionError, match="problem status 400 != HTTP status 404"):
        assert_conforms("GET", path, response)


def test_data_plane_401_needs_www_authenticate() -> None:
    ctype = {"Content-Type": "application/problem+json"}
    body = _json_bytes(_problem(401))
    ok = _response(
        "GET", "/orders/7", 401, content=body, headers=ctype | {"WWW-Authenticate": "Bearer"}
    )
    assert_conforms("GET", "/orders/7", ok)
    with pytest.raises(AssertionError, match="missing required header WWW-Authenticate"):
        assert_conforms(
            "GET", "/orders/7", _response("GET", "/orders/7", 401, content=body, headers=ctype)
        )


def test_data_plane_429_headers() -> None:
    ctype = {"Content-Type": "application/problem+json"}
    body = _json_bytes(_problem(429))
    ok = _response("POST", "/orders", 429, content=body, headers=ctype | RL | {"Retry-After": "3"})
    assert_conforms("POST", "/orders", ok)
    bad = _response(
        "POST", "/orders", 429, content=body, headers=ctype | RL | {"Retry-After": "soon"}
    )
    with pytest.raises(AssertionError, match="Retry-After: 'soon' is not an integer"):
        assert_conforms("POST", "/orders", bad)


def test_aggregate_result_conforms() -> None:
    result = {
        "complete": False,
        "parts": {
            "user": {"status": 200, "body": {"id": 7}, "error": None},
            "orders": {"status": None, "body": None, "error": "timeout"},
        },
    }
    headers = RL | {"X-Gateway-Complete": "false"}
    assert_conforms("GET", "/dash", _response("GET", "/dash", 200, json=result, headers=headers))
    result["parts"]["orders"]["error"] = "exploded"
    with pytest.raises(AssertionError, match=r"body\.parts\.orders\.error"):
        assert_conforms(
            "GET", "/dash", _response("GET", "/dash", 200, json=result, headers=headers)
        )


def test_passthrough_accepts_any_upstream_answer() -> None:
    response = _response(
        "GET",
        "/orders/7",
        404,
        content=b"<h1>nope</h1>",
        headers=RL | {"Content-Type": "text/html"},
    )
    assert_conforms("GET", "/orders/7", response, passthrough=True)
    with pytest.raises(AssertionError, match="'text/html' is not documented"):
        assert_conforms("GET", "/orders/7", response)
    no_rl = _response("GET", "/orders/7", 200, content=b"x", headers={"Content-Type": "text/plain"})
    with pytest.raises(AssertionError, match="missing required header RateLimit-Policy"):
        assert_conforms("GET", "/orders/7", no_rl, passthrough=True)


def test_undocumented_operation_fails() -> None:
    with pytest.raises(AssertionError, match="PUT /_gateway/health is not in the spec"):
        assert_conforms(
            "PUT", "/_gateway/health", _response("PUT", "/_gateway/health", 200, json=HEALTH)
        )


def test_load_spec_is_cached() -> None:
    assert load_spec() is load_spec()


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()
