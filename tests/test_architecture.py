"""The layering the project stands on: transports hold no Redis or RQ code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gql_jobs"
TRANSPORTS = [
    "web/rest.py",
    "web/health.py",
    "cli.py",
    *(f"graphql/{p.name}" for p in (PACKAGE / "graphql").glob("*.py")),
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", TRANSPORTS)
def test_transport_imports_neither_rq_nor_redis(module: str) -> None:
    roots = {name.split(".")[0] for name in imported_modules(PACKAGE / module)}
    assert not roots & {"rq", "redis"}, f"{module} must go through gql_jobs.service.jobs"


def test_public_api_is_locked() -> None:
    import gql_jobs

    assert sorted(gql_jobs.__all__) == ["report_progress", "task"]
