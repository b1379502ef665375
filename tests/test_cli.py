"""The `gql-jobs` command as a new user meets it: each mistake is one line on stderr and exit 2.

Run for real (`python -m gql_jobs ...` in a subprocess, with the test Redis), since what is tested is
what the user sees: no traceback, the setting or option named, and what would be valid.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gql_jobs.dev import free_port
from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.integration


def _one_line_error(argv: list[str], exit_code: int = 2, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gql_jobs", *argv],
        env=subprocess_env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["serve", "worker", "dev"])
def test_a_task_module_that_cannot_be_imported_is_one_line(command: str) -> None:
    port = ["--port", str(free_port())] if command != "worker" else ["--burst"]
    line = _one_line_error([command, *port], GQL_JOBS_TASKS="myapp.tasks")
    assert line == (
        f"gql-jobs {command}: GQL_JOBS_TASKS: cannot import 'myapp.tasks' (No module named 'myapp'); "
        "task modules must be importable by both the API and the worker (installed, or on PYTHONPATH)"
    )


def test_malformed_api_keys_json_is_one_line() -> None:
    # Exit 1, as every invalid setting (`sys.exit` with the message).
    line = _one_line_error(["serve", "--port", str(free_port())], 1, GQL_JOBS_API_KEYS="{not json")
    assert line.startswith("gql-jobs: invalid settings: GQL_JOBS_API_KEYS: Invalid JSON, Expecting property")
