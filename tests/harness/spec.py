"""Response conformance against ``shared/openapi.yaml``, for the contract suite.

    from harness.spec import assert_conforms

    response = client.get("/_gateway/health")
    assert_conforms("GET", "/_gateway/health", response)

``assert_conforms`` matches the concrete path to the spec's path template, picks the documented
response for the status (falling back to ``NXX``, then ``default``), and checks the required
response headers, the Content-Type and the JSON body (JSON Schema 2020-12, ``$ref``\\ s resolved
into the spec through a ``referencing`` registry). Data-plane answers that are the upstream's own
(passed through) are described by the catch-all's ``default`` response: pass ``passthrough=True``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema.exceptions
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SPEC_PATH",
    "assert_conforms",
    "load_spec",
    "path_template",
    "schema_validator",
]

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "openapi.yaml"
# Base URI under which the spec is registered; ``#/components/...`` refs resolve against it.
SPEC_URI = "https://triptych.invalid/shared/openapi.yaml"
RESERVED = "/_gateway"
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_REPORTED_ERRORS = 20


@functools.cache
def load_spec() -> dict[str, Any]:
    """The parsed spec (cached; do not mutate it)."""
    with SPEC_PATH.open(encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise TypeError(f"{SPEC_PATH} is not a YAML mapping")
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load_spec(), DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at JSON pointer ``pointer`` in the spec."""
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{pointer}"},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def schema_validator(name: str) -> Draft202012Validator:
    """Draft 2020-12 validator for ``components.schemas[name]`` (refs resolved, formats checked)."""
    if name not in load_spec().get("components", {}).get("schemas", {}):
        raise KeyError(f"no schema {name!r} in components.schemas")
    return _validator(f"/components/schemas/{_escape(name)}")


def _escape(token: str) -> str:
    """One JSON-pointer reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def _deref(obj: Any, pointer: str) -> tuple[Any, str]:
    """Follow ``$ref``\\ s (responses, headers) to their target; return it and its pointer."""
    resolver = _registry().resolver(base_uri=SPEC_URI)
    for _ in range(32):
        if not (isinstance(obj, dict) and "$ref" in obj):
            return obj, pointer
        ref = obj["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref!r} at {pointer}")
        obj, pointer = resolver.lookup(ref).contents, ref[1:]
    raise ValueError(f"$ref chain too long at {pointer}")


# ---------------------------------------------------------------------------------- paths


def _is_reserved(path: str) -> bool:
    return path == RESERVED or path.startswith(RESERVED + "/")


def _segments_match(template: str, path: str) -> bool:
    t_parts, p_parts = template.split("/"), path.split("/")
    if len(t_parts) != len(p_parts):
        return False
    for t, p in zip(t_parts, p_parts, strict=True):
        if t.startswith("{") and t.endswith("}"):
            if not p:
                return False
        elif t != p:
            return False
    return True


@functools.cache
def _ordered_templates() -> tuple[tuple[str, bool], ...]:
    """(template, is_catch_all), literal templates first, the catch-all last."""
    items = load_spec().get("paths", {})
    keyed = [(t, bool(item.get("x-catch-all"))) for t, item in items.items()]
    keyed.sort(key=lambda tc: (tc[1], tc[0].count("{"), tc[0]))
    return tuple(keyed)


def path_template(path: str) -> str:
    """The spec's path template for a concrete path (query string and URL parts ignored).

    The data-plane catch-all (the path item marked ``x-catch-all``) matches every path except
    ``/_gateway`` and ``/_gateway/...``.
    """
    path = urlsplit(path).path or "/"
    if not path.startswith("/"):
        raise AssertionError(f"not an absolute path: {path!r}")
    for template, catch_all in _ordered_templates():
        if catch_all:
            if not _is_reserved(path):
                return template
        elif _segments_match(template, path):
            return template
    raise AssertionError(f"no path in the spec matches {path!r}")


# ---------------------------------------------------------------------------------- media


def _media_type(response: httpx.Response) -> str | None:
    value: str | None = response.headers.get("content-type")
    if value is None:
        return None
    return value.split(";", 1)[0].strip().lower()


def _documented_media(media: str, content: dict[str, Any]) -> str | None:
    """The ``content`` key that documents ``media`` (exact, then ``type/*``, then ``*/*``)."""
    lowered = {key.lower(): key for key in content}
    major = media.split("/", 1)[0]
    for candidate in (media, f"{major}/*", "*/*"):
        if candidate in lowered:
            return lowered[candidate]
    return None


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _schema_errors(validator: Draft202012Validator, instance: Any, where: str) -> list[str]:
    out = []
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    for error in errors:
        # For anyOf/oneOf/allOf failures, the most relevant sub-error says more.
        detail = jsonschema.exceptions.best_match(error.context) if error.context else error
        message = detail.message if len(detail.message) <= 300 else detail.message[:297] + "..."
        location = detail.json_path.replace("$", where, 1)
        out.append(f"{location}: {message} (schema: {'/'.join(map(str, detail.schema_path))})")
    return out


def _header_errors(headers: dict[str, Any], pointer: str, response: httpx.Response) -> list[str]:
    out: list[str] = []
    for name, raw in headers.items():
        if name.lower() == "content-type":  # ignored by OpenAPI
            continue
        header, header_ptr = _deref(raw, f"{pointer}/{_escape(name)}")
        value: Any = response.headers.get(name)
        if value is None:
            if header.get("required"):
                out.append(f"missing required header {name}")
            continue
        if "schema" not in header:
            continue
        schema, _ = _deref(header["schema"], f"{header_ptr}/schema")
        if isinstance(schema, dict) and schema.get("type") == "integer":
            try:
                value = int(value)
            except ValueError:
                out.append(f"header {name}: {value!r} is not an integer")
                continue
        out += _schema_errors(_validator(f"{header_ptr}/schema"), value, f"header {name}")
    return out


# ---------------------------------------------------------------------------------- main


def assert_conforms(
    method: str, path: str, response: httpx.Response, *, passthrough: bool = False
) -> None:
    """Raise AssertionError unless ``response`` is what the spec documents for ``method path``.

    ``path`` is the concrete request path (a full URL is accepted; the query is ignored).
    ``passthrough=True`` checks a data-plane answer that is the upstream's own against the
    ``default`` response, whatever its status.
    """
    spec = load_spec()
    template = path_template(path)
    op_name = method.lower()
    if op_name not in _HTTP_METHODS:
        raise AssertionError(f"unknown HTTP method {method!r}")
    item_ptr = f"/paths/{_escape(template)}"
    operation = spec["paths"][template].get(op_name)
    if operation is None:
        raise AssertionError(f"{method.upper()} {template} is not in the spec")

    status = response.status_code
    what = f"{method.upper()} {path} → {status} (spec: {method.upper()} {template}"
    responses: dict[str, Any] = operation.get("responses", {})
    candidates = ["default"] if passthrough else [str(status), f"{str(status)[0]}XX", "default"]
    key = next((c for c in candidates if c in responses), None)
    if key is None:
        documented = ", ".join(sorted(responses))
        raise AssertionError(
            f"{what}): status {status} is not documented; documented: {documented}"
        )
    what += f" response {key!r})"
    documented_resp, resp_ptr = _deref(
        responses[key], f"{item_ptr}/{op_name}/responses/{_escape(key)}"
    )

    errors = _header_errors(documented_resp.get("headers", {}), f"{resp_ptr}/headers", response)

    content: dict[str, Any] = documented_resp.get("content") or {}
    media = _media_type(response)
    body = response.content
    if op_name == "head":
        pass  # no body; the Content-Type is the one a GET would have
    elif not content:
        if body:
            errors.append(f"documented without a body, got {len(body)} bytes")
    elif media is None:
        if body or "*/*" not in content:
            errors.append(f"no Content-Type; documented: {', '.join(content)}")
    else:
        media_key = _documented_media(media, content)
        if media_key is None:
            errors.append(
                f"Content-Type {media!r} is not documented; documented: {', '.join(content)}"
            )
        elif _is_json(media_key.lower()):
            try:
                instance = response.json()
            except ValueError as exc:
                errors.append(f"body is not JSON ({exc}): {body[:200]!r}")
            else:
                if "schema" in content[media_key]:
                    schema_ptr = f"{resp_ptr}/content/{_escape(media_key)}/schema"
                    errors += _schema_errors(_validator(schema_ptr), instance, "body")
                if media_key.lower() == "application/problem+json" and isinstance(instance, dict):
                    errors += _problem_errors(instance, response)

    if errors:
        shown = errors[:_MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        lines = "\n".join(f"  - {e}" for e in shown) + (f"\n  ... and {more} more" if more else "")
        raise AssertionError(f"{what} does not conform to the spec:\n{lines}")


def _problem_errors(problem: dict[str, Any], response: httpx.Response) -> list[str]:
    out = []
    if "status" in problem and problem["status"] != response.status_code:
        out.append(f"problem status {problem['status']!r} != HTTP status {response.status_code}")
    header_id = response.headers.get("x-request-id")
    if "request_id" in problem and header_id is not None and problem["request_id"] != header_id:
        out.append(f"problem request_id {problem['request_id']!r} != X-Request-ID {header_id!r}")
    return out
