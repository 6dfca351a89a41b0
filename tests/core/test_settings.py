"""Settings: defaults, one named variable per error, and the docs table kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_core.settings import SETTINGS, SettingError, load_settings, settings_table

GOOD = {"DATABASE_URL": "postgresql://u@h/db", "GATEWAY_ADMIN_TOKEN": "x" * 16}


def test_defaults_follow_the_brief() -> None:
    s = load_settings(GOOD)
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8080, 1)
    assert s.max_body_bytes == 1024 * 1024


@pytest.mark.parametrize("missing", ["DATABASE_URL", "GATEWAY_ADMIN_TOKEN"])
def test_a_missing_required_setting_is_named(missing: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SettingError) as err:
        load_settings(env)
    assert err.value.variable == missing


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_PORT", "http"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_WORKERS", "0"),
        ("GATEWAY_MAX_BODY_BYTES", "-1"),
        ("GATEWAY_ADMIN_TOKEN", "short"),
        ("DATABASE_URL", "mysql://x"),
        ("GATEWAY_ACCESS_LOG", "perhaps"),
        ("GATEWAY_LOG_LEVEL", "loud"),
    ],
)
def test_a_malformed_setting_is_named(variable: str, value: str) -> None:
    with pytest.raises(SettingError) as err:
        load_settings({**GOOD, variable: value})
    assert err.value.variable == variable
    assert "\n" not in str(err.value)


def test_secrets_are_not_echoed() -> None:
    with pytest.raises(SettingError) as err:
        load_settings({**GOOD, "GATEWAY_ADMIN_TOKEN": "hunter2"})
    assert "hunter2" not in str(err.value)


def test_every_setting_is_documented_in_operations_md() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    regenerate = "python -c 'from gateway_core.settings import *; print(settings_table())'"
    assert settings_table() in doc, f"regenerate the table in docs/operations.md: {regenerate}"
    assert all(f"`{s.env}`" in doc for s in SETTINGS)
