"""The floors the package stands on, and who may import whom.

    graphql/ ──> web/ ──> service/ ──> store/ <── worker/
        └────────────────────┴───────────┴──────────┴──> the root (settings, domain, errors, ...)

`client/` (the Python client, an optional extra) stands apart: it speaks only the public API over
HTTP and WebSocket, so it imports no floor of the server, and no floor imports it (`cli_client.py`
declares its commands and imports it only to run one).

`web/`, `graphql/` and `cli.py` import nothing from `gql_jobs.store`, `rq` or `redis`: every job
operation goes through `gql_jobs.service`. Only `store/` and `worker/` import `rq` or `redis`.
`app.py` is the composition root: it builds the store's Redis clients and hands them to the
service (it imports `gql_jobs.store`, never `redis` itself). No floor imports one above it, so
there are no cycles between packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gql_jobs.errors import ErrorCode

PACKAGE = Path(__file__).resolve().parent.parent / "gql_jobs"
MODULES = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py"))
FLOORS = ("store", "service", "worker", "web", "graphql", "client")
#: What each floor must not import (besides `rq` and `redis`, which only store/ and worker/ may).
FORBIDDEN: dict[str, set[str]] = {
    "store": {"service", "worker", "web", "graphql", "client"},
    "worker": {"service", "web", "graphql", "client"},
    "service": {"worker", "web", "graphql", "client"},
    "web": {"store", "worker", "graphql", "client"},
    "graphql": {"store", "worker", "client"},
    "client": {"store", "service", "worker", "web", "graphql"},  # the public API only
    "cli.py": {"store", "client"},  # it parses and delegates: to app, worker/, web/server, graphql/schema
    "app.py": {"client"},
    "dev.py": {"client"},
}
#: Root modules that wire floors together; every other root module is ground floor.
WIRING = {"app.py", "cli.py", "cli_client.py", "dev.py", "progress.py", "__init__.py", "__main__.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "gql_jobs":  # `from gql_jobs import store` names a floor too
                names.update(f"gql_jobs.{alias.name}" for alias in node.names)
    return names


def floor_of(module: str) -> str:
    head = module.split("/", maxsplit=1)[0]
    return head if head in FLOORS else module


def floors_imported(module: str) -> set[str]:
    found = set()
    for name in imported_modules(PACKAGE / module):
        parts = name.split(".")
        if parts[0] in ("rq", "redis"):
            found.add(parts[0])
        elif parts[0] == "gql_jobs" and len(parts) > 1 and parts[1] in FLOORS:
            found.add(parts[1])
    return found - {floor_of(module)}


@pytest.mark.parametrize("module", MODULES)
def test_rq_and_redis_only_in_store_and_worker(module: str) -> None:
    if floor_of(module) in ("store", "worker"):
        return
    assert not floors_imported(module) & {"rq", "redis"}, f"{module}: go through gql_jobs.service"


@pytest.mark.parametrize("module", [m for m in MODULES if floor_of(m) in FORBIDDEN])
def test_no_floor_imports_one_above_it(module: str) -> None:
    wrong = floors_imported(module) & FORBIDDEN[floor_of(module)]
    assert not wrong, f"{module} imports {sorted(wrong)}"


@pytest.mark.parametrize("module", [m for m in MODULES if "/" not in m and m not in WIRING])
def test_ground_floor_modules_import_no_floor(module: str) -> None:
    assert not floors_imported(module), f"{module} is imported by every floor: it may import none"


def test_public_api_is_locked() -> None:
    import gql_jobs

    assert sorted(gql_jobs.__all__) == ["report_progress", "task"]


# -- error codes -----------------------------------------------------------------------------------


def test_every_code_the_graphql_layer_maps_to_is_an_error_code() -> None:
    from gql_jobs.graphql import documents, errors, router

    tables = [*errors.CODES.values(), errors.DEFAULT_CODE, *router.CODES.values()]
    assert all(isinstance(code, ErrorCode) for code in tables)
    spelled = [
        documents.DOCUMENT_TOO_LARGE,
        documents.QUERY_TOO_DEEP,
        documents.TOO_MANY_ALIASES,
        documents.QUERY_TOO_COMPLEX,
        documents.PARSE_FAILED,
        documents.VALIDATION_FAILED,
        documents.BAD_USER_INPUT,
    ]
    assert {ErrorCode(code) for code in spelled} <= set(ErrorCode)


def _code_literals(path: Path) -> list[str]:
    """String literals spelling an error code, and `{"code": "<literal>"}` dicts."""
    values = {code.value for code in ErrorCode}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in values:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                    found.append(f"line {node.lineno}: code {value.value!r}")
    return found


# The client's generated layer copies the schema's enums (BulkSkipCode.NOT_FOUND...), not codes.
@pytest.mark.parametrize(
    "module", [m for m in MODULES if m != "errors.py" and not m.startswith("client/_generated/")]
)
def test_error_codes_are_spelled_only_in_the_enum(module: str) -> None:
    assert _code_literals(PACKAGE / module) == [], f"{module}: use gql_jobs.errors.ErrorCode"


def test_the_server_imports_no_client() -> None:
    """The client is an optional extra: the server, its CLI and its argument parser run without it."""
    import subprocess
    import sys

    probe = (
        "import sys, gql_jobs.app, gql_jobs.cli, gql_jobs.graphql.schema, gql_jobs.worker.supervisor;"
        "gql_jobs.cli._parser();"
        "print(sorted(m for m in sys.modules if m.startswith(('gql_jobs.client', 'rich'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, timeout=60)
    assert done.stdout.decode().strip() == "[]"
