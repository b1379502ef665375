"""Frontend build tools over `schema.graphql`, as the README's "Using it from a frontend" sets them
up: Relay's compiler on `@refetchable` fragments on `Job` and a `@connection` on `jobs` (which needs
`Job implements Node` and `Query.node(id:)`), its generated queries run against the app, and
graphql-codegen's TypeScript for the README's operations compiled by `tsc --strict`.

Each project (clients/relay/, clients/codegen/) is copied with the schema into a temporary
directory and built there, so the checkout gets no generated files; the tools are clients/' pinned
devDependencies, installed as tests/node_helpers.py says (skipped only where Node is missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT
from tests.node_helpers import CLIENTS, installed_clients

pytestmark = pytest.mark.integration

#: Seconds a compiler run may take at most.
TOOL_TIMEOUT = 120
BIN = CLIENTS / "node_modules" / ".bin"


def copied(project: str, tmp_path: Path) -> Path:
    """clients/<project> under `tmp_path`, with `schema.graphql` where its `../../schema.graphql` points."""
    installed_clients()
    shutil.copy(ROOT / "schema.graphql", tmp_path / "schema.graphql")
    return Path(shutil.copytree(CLIENTS / project, tmp_path / "clients" / project))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A clients/ tool in `cwd`, resolving packages from clients/node_modules (the copy has none)."""
    env = {**os.environ, "NODE_PATH": str(CLIENTS / "node_modules"), "NO_COLOR": "1"}
    return subprocess.run(
        argv, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT
    )


def compiled(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, (
        f"{result.args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )


def operation_text(artifact: Path) -> str:
    """The query text a Relay artifact sends (its `params.text`)."""
    found = re.search(r'"text": ("(?:[^"\\]|\\.)*")', artifact.read_text())
    assert found is not None, f"no operation text in {artifact.name}"
    text: str = json.loads(found.group(1))
    return text


@pytest.fixture(scope="module")
def relay_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copied("relay", tmp_path_factory.mktemp("relay"))
    compiled(run([str(BIN / "relay-compiler")], cwd=project))
    return project / "src" / "__generated__"


def test_relay_compiles_refetchable_job_fragments_and_a_jobs_connection(relay_artifacts: Path) -> None:
    assert sorted(p.name for p in relay_artifacts.iterdir()) == [
        "JobListPageQuery.graphql.ts",
        "JobListPaginationQuery.graphql.ts",
        "JobList_query.graphql.ts",
        "JobRowRefetchQuery.graphql.ts",
        "JobRow_job.graphql.ts",
    ]
    assert "node(id: $id)" in operation_text(relay_artifacts / "JobRowRefetchQuery.graphql.ts")
    pagination = operation_text(relay_artifacts / "JobListPaginationQuery.graphql.ts")
    assert "jobs(first: $first, after: $after)" in pagination
    assert "endCursor" in pagination and "cursor" in pagination
    assert "__Jobs_jobs_connection" in (relay_artifacts / "JobList_query.graphql.ts").read_text()


def test_relays_generated_queries_run_against_the_app(relay_artifacts: Path, client: TestClient) -> None:
    def graphql(query: str, variables: dict[str, object]) -> Any:
        response = client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body

    submit = """mutation S {
      submitJob(input: {task: "echo", payload: {n: 1}}) { ... on SubmitJobSuccess { job { id } } }
    }"""
    job_id = graphql(submit, {})["data"]["submitJob"]["job"]["id"]

    refetch = graphql(operation_text(relay_artifacts / "JobRowRefetchQuery.graphql.ts"), {"id": job_id})
    assert refetch["data"] == {
        "node": {"__typename": "Job", "id": job_id, "status": "QUEUED", "task": "echo"}
    }

    page = graphql(operation_text(relay_artifacts / "JobListPaginationQuery.graphql.ts"), {"first": 1})
    jobs = page["data"]["jobs"]
    assert [edge["node"]["id"] for edge in jobs["edges"]] == [job_id]
    assert jobs["pageInfo"] == {"endCursor": jobs["edges"][0]["cursor"], "hasNextPage": False}


@pytest.fixture(scope="module")
def codegen_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copied("codegen", tmp_path_factory.mktemp("codegen"))
    compiled(run([str(BIN / "graphql-codegen"), "--config", "codegen.yml"], cwd=project))
    return project


def test_graphql_codegens_types_compile_under_tsc_strict(codegen_project: Path) -> None:
    generated = (codegen_project / "src" / "__generated__" / "graphql.ts").read_text()
    assert re.search(r"\bany\b", generated) is None  # strictScalars: every scalar is mapped
    assert "submittedAt: string | null" in generated
    assert "code: ErrorCode," in generated and "export type ErrorCode =" in generated  # `code` is typed
    assert "| 'RATE_LIMITED'" in generated
    compiled(run([str(BIN / "tsc"), "-p", "tsconfig.json"], cwd=codegen_project))


def test_tsc_strict_rejects_a_misuse_of_the_generated_types(codegen_project: Path) -> None:
    """The check above has teeth: a DateTime is no number, and a union must be narrowed first."""
    misuse = codegen_project / "src" / "misuse.ts"
    misuse.write_text(
        'import type { SubmitJobMutation } from "./__generated__/graphql";\n'
        "export const at = (d: SubmitJobMutation): number | null => d.submitJob.job.submittedAt;\n"
    )
    try:
        checked = run([str(BIN / "tsc"), "-p", "tsconfig.json"], cwd=codegen_project)
    finally:
        misuse.unlink()
    assert checked.returncode != 0
    assert "misuse.ts" in checked.stdout and "TS2339" in checked.stdout, checked.stdout


def test_tsc_strict_rejects_a_code_that_is_not_an_error_code(codegen_project: Path) -> None:
    """`code` is the enum, not any string: a misspelt code does not compile."""
    misuse = codegen_project / "src" / "misspelt.ts"
    misuse.write_text(
        'import type { SubmitJobMutation } from "./__generated__/graphql";\n'
        "export const limited = (d: SubmitJobMutation): boolean =>\n"
        '  d.submitJob.__typename !== "SubmitJobSuccess" && d.submitJob.code === "RATE_LIMITTED";\n'
    )
    try:
        checked = run([str(BIN / "tsc"), "-p", "tsconfig.json"], cwd=codegen_project)
    finally:
        misuse.unlink()
    assert checked.returncode != 0
    assert "misspelt.ts" in checked.stdout and "TS2367" in checked.stdout, checked.stdout
