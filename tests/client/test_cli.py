"""The client's `gql-jobs` commands, run as subprocesses against a real server and worker: JSON
when piped (as `run_cli` runs them), rich output in a pseudo-terminal, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gql_jobs import __version__
from gql_jobs.dev import free_port
from tests.client.conftest import Server
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration


def cli_json(server: Server, *argv: str) -> Any:
    done = run_cli(*argv, env=server.cli_env())
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    """The command failed with one line on stderr and no traceback."""
    stderr = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


def test_submit_status_and_jobs(server: Server, tag: str, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"a": 4, "b": 5}')
    submitted = cli_json(server, "submit", "add", "--payload", f"@{payload}", "--tag", tag)
    assert submitted["status"] == "QUEUED" and submitted["tags"] == [tag]
    waited = cli_json(server, "submit", "add", "--payload", '{"a": 1, "b": 1}', "--tag", tag, "--wait")
    assert waited["status"] == "FINISHED" and waited["result"] == {"total": 2}
    status = cli_json(server, "status", waited["id"])
    assert status["id"] == waited["id"] and status["result"] == {"total": 2}
    listed = cli_json(server, "jobs", "--tag", tag)
    assert [job["id"] for job in listed] == [waited["id"], submitted["id"]]
    finished = cli_json(server, "jobs", "--tag", tag, "--status", "finished", "--task", "add")
    assert waited["id"] in [job["id"] for job in finished]


def test_submit_wait_of_a_failing_job_exits_non_zero(server: Server) -> None:
    done = run_cli("submit", "fail", "--payload", '{"message": "boom"}', "--wait", env=server.cli_env())
    assert done.returncode == 3
    assert json.loads(done.stdout)["status"] == "FAILED"


def test_submit_wait_gives_up_after_its_timeout(server: Server, tmp_path: Path) -> None:
    payload = json.dumps({"gate": str(tmp_path), "steps": 1})  # never released
    done = run_cli(
        "submit", "gated_steps", "--payload", payload, "--wait", "--wait-timeout", "0.5", env=server.cli_env()
    )
    line = one_line_error(done)
    assert "did not end within --wait-timeout 0.5 s" in line
    cli_json(server, "cancel", line.split()[2])


def test_cancel_requeue_delete(server: Server) -> None:
    job = cli_json(server, "submit", "add", "--payload", '{"a": 1, "b": 1}', "--queue", "parked")
    assert cli_json(server, "cancel", job["id"])["status"] == "CANCELED"
    assert cli_json(server, "requeue", job["id"])["status"] == "QUEUED"
    assert cli_json(server, "delete", job["id"]) == {"id": job["id"], "deleted": True}
    gone = run_cli("status", job["id"], env=server.cli_env())
    assert "No job with id" in one_line_error(gone)


def test_queues_workers_and_top(server: Server) -> None:
    assert "default" in [queue["name"] for queue in cli_json(server, "queues")]
    assert cli_json(server, "workers")[0]["queues"] == ["default"]
    top = cli_json(server, "top", "--iterations", "1")
    assert {"queues", "workers"} <= top.keys()


def test_watch_piped_prints_each_update_as_json(server: Server) -> None:
    job = cli_json(server, "submit", "add", "--payload", '{"a": 1, "b": 2}')
    done = run_cli("watch", job["id"], env=server.cli_env())
    assert done.returncode == 0, done.stderr.decode()
    updates = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert updates[-1]["status"] == "FINISHED" and updates[-1]["result"] == {"total": 3}
    failing = cli_json(server, "submit", "fail", "--payload", '{"message": "boom"}')
    failed = run_cli("watch", failing["id"], env=server.cli_env())
    assert failed.returncode == 3
    last = json.loads(failed.stdout.decode().splitlines()[-1])
    assert last["status"] == "FAILED" and "boom" in last["error"]["traceback"]


def test_watch_in_a_terminal_shows_a_progress_bar_then_the_result(server: Server, tmp_path: Path) -> None:
    job = cli_json(
        server, "submit", "gated_steps", "--payload", json.dumps({"gate": str(tmp_path), "steps": 2})
    )
    with PseudoTerminal([sys.executable, "-m", "gql_jobs", "watch", job["id"]], server.cli_env()) as terminal:
        (tmp_path / "1").touch()
        terminal.read_until("step 1 of 2")  # the bar, live, with the task's message
        (tmp_path / "2").touch()
        output = terminal.read_to_end()
    assert terminal.returncode == 0
    assert "\x1b[" in output  # colour
    text = plain(output)
    assert "━" in text and "100%" in text and "step 2 of 2" in text
    assert f"{job['id']} FINISHED" in text and '"steps": 2' in text


def test_watch_in_a_terminal_ends_with_the_traceback(server: Server) -> None:
    job = cli_json(server, "submit", "fail", "--payload", '{"message": "kaboom"}')
    with PseudoTerminal([sys.executable, "-m", "gql_jobs", "watch", job["id"]], server.cli_env()) as terminal:
        output = terminal.read_to_end()
    assert terminal.returncode == 3
    text = plain(output)
    assert "Traceback (most recent call last)" in text and "TaskFailedError: kaboom" in text


# -- errors a user understands --------------------------------------------------------------------


def test_an_unreachable_server_is_one_line(server: Server) -> None:
    env = server.cli_env(GQL_JOBS_URL=f"http://127.0.0.1:{free_port()}", GQL_JOBS_RETRIES="0")
    line = one_line_error(run_cli("jobs", env=env))
    assert line.startswith("gql-jobs jobs: cannot reach http://127.0.0.1:")


def test_a_bad_client_variable_is_one_line(server: Server) -> None:
    line = one_line_error(run_cli("jobs", env=server.cli_env(GQL_JOBS_TIMEOUT="soon")))
    assert line == "gql-jobs jobs: GQL_JOBS_TIMEOUT must be a number, not 'soon'"


def test_a_bad_key_is_one_line(server: Server) -> None:
    line = one_line_error(run_cli("jobs", "--key", "gqljobs_wrong", env=server.cli_env()))
    assert line.startswith("gql-jobs jobs: ") and "API key" in line


def test_an_unknown_task_lists_the_tasks(server: Server) -> None:
    line = one_line_error(run_cli("submit", "no_such_task", env=server.cli_env()))
    assert "no_such_task" in line and "known tasks: add, " in line


def test_an_invalid_payload_names_the_fields(server: Server) -> None:
    line = one_line_error(run_cli("submit", "add", "--payload", '{"a": "x", "b": -1}', env=server.cli_env()))
    assert "a: Input should be a valid integer" in line and "b: Input should be greater than" in line


def test_a_payload_that_is_not_json_is_one_line(server: Server) -> None:
    line = one_line_error(run_cli("submit", "add", "--payload", "{nope", env=server.cli_env()))
    assert "--payload is not JSON" in line
    line = one_line_error(run_cli("submit", "add", "--payload", "@/no/such/file", env=server.cli_env()))
    assert "--payload @/no/such/file" in line


def test_without_the_client_extra_the_command_says_what_to_install(tmp_path: Path, server: Server) -> None:
    (tmp_path / "rich.py").write_text("raise ModuleNotFoundError(\"No module named 'rich'\", name='rich')\n")
    env = server.cli_env(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    line = one_line_error(run_cli("jobs", env=env))
    assert "pip install 'gql-jobs[client]'" in line and "rich" in line


def test_help_shows_defaults_and_version_prints(server: Server) -> None:
    env = server.cli_env()
    del env["GQL_JOBS_URL"]
    help_text = " ".join(run_cli("submit", "--help", env=env, check=True).stdout.decode().split())
    assert "(default: http://127.0.0.1:8000)" in help_text and "GQL_JOBS_API_KEY" in help_text
    assert "default: 30" in help_text and "default: 3)" in help_text
    assert run_cli("--version", env=env, check=True).stdout.decode().strip() == f"gql-jobs {__version__}"
    listed = run_cli("--help", env=env, check=True).stdout.decode()
    for command in (
        "dev",
        "serve",
        "worker",
        "create-key",
        "export-schema",
        "possible-types",
        "watch",
        "top",
    ):
        assert command in listed


def plain(output: str) -> str:
    """Terminal output without its escape sequences (colours, cursor moves)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)


class PseudoTerminal:
    """Run a command with its output on a pseudo-terminal (so it sees a terminal), reading what it
    prints until a condition holds or it ends; bounded by a generous deadline, never by a pace."""

    DEADLINE = 60.0

    def __init__(self, argv: list[str], env: dict[str, str], interactive: bool = False) -> None:
        self.argv = argv
        self.interactive = interactive  # stdin on the terminal too (to answer a question)
        self.env = env | {"COLUMNS": "120", "TERM": "xterm-256color"}
        self.output = ""
        self.returncode: int | None = None

    def __enter__(self) -> PseudoTerminal:
        master, slave = os.openpty()
        self.master = master
        stdin = slave if self.interactive else None
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdin=stdin, stdout=slave, stderr=slave
        )
        os.close(slave)
        self.deadline = time.monotonic() + self.DEADLINE
        return self

    def _read(self) -> bool:
        """Read what is there (waiting for it); False once the command closed the terminal."""
        import select

        ready, _, _ = select.select([self.master], [], [], max(0.0, self.deadline - time.monotonic()))
        assert ready, f"nothing more within {self.DEADLINE} s; so far: {self.output[-2000:]!r}"
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other end is closed
            return False
        self.output += chunk.decode(errors="replace")
        return bool(chunk)

    def read_until(self, text: str) -> None:
        while text not in self.output:
            assert self._read(), f"ended before {text!r}: {self.output[-2000:]!r}"

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read_to_end(self) -> str:
        while self._read():
            pass
        self.returncode = self.process.wait(timeout=self.DEADLINE)
        return self.output

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


# -- bulk actions, operators' commands -------------------------------------------------------------


def park(server: Server, tag: str, count: int, env: dict[str, str] | None = None) -> list[str]:
    """Jobs on a queue no worker serves: they wait."""
    argv = ("submit", "echo", "--queue", "parked", "--tag", tag)
    return [
        json.loads(run_cli(*argv, env=env or server.cli_env(), check=True).stdout)["id"] for _ in range(count)
    ]


def test_bulk_actions_by_filter_and_by_ids(server: Server, tag: str) -> None:
    ids = park(server, tag, 4)
    canceled = cli_json(server, "cancel", "--tag", tag, "--status", "queued")  # piped: not asked
    assert (canceled["acted"], canceled["matched"], canceled["calls"]) == (4, 4, 2)  # bulk limit 3
    assert sorted(canceled["actedIds"]) == sorted(ids)
    once = cli_json(server, "requeue", "--tag", tag, "--one-call")
    assert (once["acted"], once["truncated"], once["calls"]) == (3, True, 1)
    deleted = cli_json(server, "delete", *ids[:2])
    assert deleted["calls"] == 1 and sorted(deleted["actedIds"]) == sorted(ids[:2])
    skipped = cli_json(server, "cancel", ids[0], ids[2], ids[3])
    reasons = {skip["id"]: skip["reason"] for skip in skipped["skipped"]}
    assert reasons.get(ids[0]) == "NOT_FOUND"
    cli_json(server, "delete", "--tag", tag)
    assert cli_json(server, "jobs", "--tag", tag) == []


def test_a_bulk_action_needs_ids_or_a_filter_not_both(server: Server) -> None:
    assert "give job IDs or filter options" in one_line_error(run_cli("cancel", env=server.cli_env()))
    both = run_cli("delete", "some-id", "--queue", "parked", env=server.cli_env())
    assert "not both" in one_line_error(both)


def test_a_filter_based_action_asks_on_a_terminal(server: Server, tag: str) -> None:
    park(server, tag, 2)
    argv = [sys.executable, "-m", "gql_jobs", "cancel", "--tag", tag]
    with PseudoTerminal(argv, server.cli_env(), interactive=True) as terminal:
        terminal.read_until("[y/N]")
        terminal.type("n\n")
        terminal.read_to_end()
    assert terminal.returncode == 1 and "nothing done" in terminal.output
    assert {job["status"] for job in cli_json(server, "jobs", "--tag", tag)} == {"QUEUED"}
    with PseudoTerminal(argv, server.cli_env(), interactive=True) as terminal:
        terminal.read_until("[y/N]")
        terminal.type("y\n")
        output = plain(terminal.read_to_end())
    assert terminal.returncode == 0 and "canceled 2 of 2 matched jobs" in output
    skipping = [sys.executable, "-m", "gql_jobs", "delete", "--tag", tag, "--status", "queued", "--yes"]
    with PseudoTerminal(skipping, server.cli_env(), interactive=True) as terminal:
        output = plain(terminal.read_to_end())
    assert terminal.returncode == 0 and "[y/N]" not in output and "deleted 0 of 0" in output
    cli_json(server, "delete", "--tag", tag)


def test_a_tenant_bulk_acts_on_its_own_jobs_only(server: Server, tag: str) -> None:
    alice = server.cli_env(GQL_JOBS_API_KEY=server.tenants["alice"])
    bob = server.cli_env(GQL_JOBS_API_KEY=server.tenants["bob"])
    hers = park(server, tag, 2, env=alice)
    by_filter = json.loads(run_cli("cancel", "--tag", tag, env=bob, check=True).stdout)
    assert (by_filter["matched"], by_filter["acted"]) == (0, 0)
    by_ids = json.loads(run_cli("delete", *hers, env=bob, check=True).stdout)
    assert by_ids["acted"] == 0 and {skip["reason"] for skip in by_ids["skipped"]} <= {"NOT_FOUND"}
    assert json.loads(run_cli("delete", "--tag", tag, env=alice, check=True).stdout)["acted"] == 2
    assert "admin" in one_line_error(run_cli("stats", env=alice))


def test_jobs_since_until_and_order(server: Server, tag: str) -> None:
    first, second = park(server, tag, 2)
    newest = cli_json(server, "jobs", "--tag", tag, "--since", "1h")
    assert [job["id"] for job in newest] == [second, first]
    oldest = cli_json(server, "jobs", "--tag", tag, "--tag", "nothing", "--order", "oldest-first")
    assert [job["id"] for job in oldest] == [first, second]
    assert cli_json(server, "jobs", "--tag", tag, "--until", "2000-01-01T00:00:00Z") == []
    assert "ISO 8601" in one_line_error(run_cli("jobs", "--since", "yesterday", env=server.cli_env()))
    cli_json(server, "delete", "--tag", tag)


def test_status_choices_come_from_the_generated_enum(server: Server) -> None:
    from gql_jobs.client import JobStatus

    help_text = "".join(run_cli("jobs", "--help", env=server.cli_env(), check=True).stdout.decode().split())
    for status in JobStatus:
        assert (status.value.lower() in help_text) is (status is not JobStatus.UNKNOWN)
    assert run_cli("jobs", "--status", "bogus", env=server.cli_env()).returncode == 2


def test_status_shows_the_attempts(server: Server) -> None:
    job = cli_json(server, "submit", "add", "--payload", '{"a": 1, "b": 1}', "--wait")
    (attempt,) = cli_json(server, "status", job["id"])["attempts"]
    assert attempt["outcome"] == "SUCCESSFUL" and attempt["returnValue"] == {"total": 2}
    with PseudoTerminal(
        [sys.executable, "-m", "gql_jobs", "status", job["id"]], server.cli_env()
    ) as terminal:
        output = plain(terminal.read_to_end())
    assert "attempts" in output and "SUCCESSFUL" in output


def test_stats_suspension_and_emptying_a_queue(server: Server, tag: str) -> None:
    cli_json(server, "submit", "add", "--payload", '{"a": 1, "b": 1}', "--wait")
    stats = cli_json(server, "stats", "--window", "10", "--step", "5")
    assert len(stats["buckets"]) == 2 and stats["totals"]["submitted"] >= 1
    argv = [sys.executable, "-m", "gql_jobs", "stats", "--window", "10", "--step", "2"]
    with PseudoTerminal(argv, server.cli_env()) as terminal:
        output = plain(terminal.read_to_end())
    assert "submitted" in output and any(spark in output for spark in "▁▂▃▄▅▆▇█")
    try:
        assert cli_json(server, "workers", "--suspend", "--ttl", "600") == {"workersSuspended": True}
        assert cli_json(server, "top", "--iterations", "1")["workersSuspended"] is True
    finally:
        assert cli_json(server, "workers", "--resume") == {"workersSuspended": False}
    queue = f"empty-{tag}"[:40]
    run_cli("submit", "echo", "--queue", queue, "--tag", tag, env=server.cli_env(), check=True)
    assert cli_json(server, "queues", "--empty", queue, "--yes") == {"queue": queue, "deleted": 1}
