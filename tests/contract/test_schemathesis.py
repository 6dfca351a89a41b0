"""Schemathesis over the admin API and the ops endpoints: no 5xx, every answer as specified."""

from __future__ import annotations

import contextlib
from typing import Any

import hypothesis
import pytest
import schemathesis
from contract_kit import ADMIN_TOKEN
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harness import Gateway
from harness.spec import SPEC_PATH

EXAMPLES = 25  # per operation and mode: 16 operations x 2 modes stay well under a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_path(SPEC_PATH).exclude(tag="data-plane")
    return [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]


def _run(operation: Any, generation: Any, base_url: str, failures: list[str]) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=generation))
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # collected, so that one run reports every operation
            failures.append(f"{operation.label}: {exc}\n  {case.as_curl_command()}")
            return
        ctype = (response.headers.get("content-type") or [""])[0]
        if response.status_code >= 400 and ctype.startswith("application/problem+json"):
            body = response.json()
            request_id = (response.headers.get("x-request-id") or [None])[0]
            if body.get("request_id") != request_id or body.get("status") != response.status_code:
                failures.append(f"{operation.label}: problem members disagree: {body}")

    # Negative mode: an operation without inputs has no invalid request to make.
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        check()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_admin_and_ops(gateway: Gateway, mode: str) -> None:
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    failures: list[str] = []
    operations = _operations()
    assert len(operations) >= 14, [op.label for op in operations]
    for operation in operations:
        _run(operation, generation, gateway.url, failures)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:8])
