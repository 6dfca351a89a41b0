"""gateway_core is framework-neutral: it imports no framework, driver or HTTP library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import gateway_core

FORBIDDEN = ("asyncio", "trio", "curio", "asyncpg", "httpx", "hypercorn", "anyio", "sniffio")
CORE = Path(gateway_core.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_framework(path: Path) -> None:
    assert not _imports(path) & set(FORBIDDEN)


def test_importing_the_core_loads_no_framework() -> None:
    # A fresh interpreter, so that nothing imported by other tests hides a transitive import.
    code = (
        "import sys, gateway_core, gateway_core.gateway, gateway_core.asgi, gateway_core.launch;"
        f"print(sorted(set(sys.modules) & set({FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_check_would_see_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import trio.lowlevel\nfrom asyncpg import Pool\n")
    assert _imports(module) >= {"trio", "asyncpg"}
