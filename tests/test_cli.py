"""The `gql-jobs` command as a new user meets it: each mistake is one line on stderr and exit 2.

Run for real (`python -m gql_jobs ...` in a subprocess, with the test Redis), since what is tested is
what the user sees: no traceback, the setting or option named, and what would be valid.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gql_jobs.dev import free_port
from tests.conftest import ROOT, subprocess_env

pytestmark = pytest.mark.integration

SCOPES = "submit, read, metrics, admin"


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scopes", "submit,bogus"], f"--scopes: 'bogus' is not a scope; valid: {SCOPES}"),
        (
            ["--scopes", ","],
            f"--scopes: List should have at least 1 item after validation, not 0 (valid: {SCOPES})",
        ),
        (
            ["--principal", "anonymous"],
            "--principal: 'anonymous' is reserved (so are: anonymous, system); choose another principal name",
        ),
        (["--principal", "a/b"], "--principal: String should match pattern '^[A-Za-z0-9_.:-]{1,64}$'"),
    ],
)
def test_create_key_says_what_is_valid(argv: list[str], message: str) -> None:
    options = ["--principal", "billing", *argv] if "--principal" not in argv else argv
    assert _one_line_error(["create-key", *options]) == f"gql-jobs create-key: {message}"


def test_create_key_makes_an_entry_the_settings_accept() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gql_jobs", "create-key", "--principal", "billing", "--scopes", "read"],
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    entry = result.stdout.splitlines()[1].split(": ", 1)[1]
    (digest,) = json.loads(entry)
    check = subprocess.run(
        [sys.executable, "-m", "gql_jobs", "export-schema"],
        env=subprocess_env(GQL_JOBS_API_KEYS=entry),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert len(digest) == 64 and check.returncode == 0, check.stderr
