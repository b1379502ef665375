"""The generated layer is what ariadne-codegen makes from today's schema.graphql and operations:
regenerated into a temporary directory (scripts/generate-client), it must equal the committed one,
as scripts/test holds schema.graphql to the code."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

from tests.conftest import ROOT

GENERATED = ROOT / "gql_jobs" / "client" / "_generated"


def python_files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*.py"))}


def test_the_generated_client_is_not_stale(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "generate-client"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        timeout=600,  # the first run makes .venv-codegen (pip, from its cache when warm)
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    fresh, committed = python_files(tmp_path / "_generated"), python_files(GENERATED)
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"stale: {stale}; run scripts/generate-client and commit gql_jobs/client/_generated"
    assert not filecmp.dircmp(tmp_path / "_generated", GENERATED, ignore=["__pycache__"]).diff_files


def test_the_generated_error_code_is_the_servers() -> None:
    """The one enum of codes, through the schema: the client's `.code` and the server's agree."""
    from gql_jobs.client._generated.enums import ErrorCode as Generated
    from gql_jobs.errors import ErrorCode

    assert [code.value for code in Generated] == [code.value for code in ErrorCode]
