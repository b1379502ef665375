"""The client's `gql-jobs` subcommands, declared: argparse only, so `gql-jobs` lists them on a
server without the client extra (importing `gql_jobs.client` needs it). Each runs through `run`,
which imports the client (or says which extra to install) and turns every client error into one
line and an exit code."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from gql_jobs.constants import CLIENT_DEFAULT_RETRIES, CLIENT_DEFAULT_TIMEOUT, CLIENT_DEFAULT_URL

#: Exit codes: an error the user can fix (bad input, refused), the job did not succeed, interrupted.
EXIT_ERROR = 1
EXIT_JOB_FAILED = 3
EXIT_INTERRUPTED = 130


def status_choices() -> list[str]:
    """`--status` values: the API's JobStatus enum as generated (so a status the schema gains is
    offered without editing this), lower case, without UNKNOWN (no filter matches it).

    The generated enums module imports only `enum`; it is loaded from its file, as importing it
    by name would import `gql_jobs.client` (the client extra) into every server command."""
    path = Path(__file__).parent / "client" / "_generated" / "enums.py"
    spec = importlib.util.spec_from_file_location("_gql_jobs_generated_enums", path)
    if spec is None or spec.loader is None:  # pragma: no cover (the file ships with the package)
        raise ImportError(f"cannot load {path}")
    enums = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(enums)
    return [status.value.lower() for status in enums.JobStatus if status.value != "UNKNOWN"]


def _add_filter_options(parser: argparse.ArgumentParser, tag_help: str) -> None:
    parser.add_argument("--status", type=str.lower, choices=status_choices(), default=None)
    parser.add_argument("--queue", default=None)
    parser.add_argument("--task", default=None)
    parser.add_argument("--tag", action="append", default=None, help=tag_help)
    parser.add_argument(
        "--since", default=None, help="submitted at or after: ISO 8601, or a span back from now (30m, 1h, 2d)"
    )
    parser.add_argument("--until", default=None, help="submitted before: ISO 8601, or a span (1h)")


def add_client_commands(commands: Any) -> None:
    """Add the client commands to `gql-jobs`' subparsers (`commands`)."""
    common = _common_options()

    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, help=help, parents=[common], formatter_class=_DefaultsShown
        )
        parser.set_defaults(handler=None, client_command=name)
        return parser

    submit = add("submit", "submit a job to a gql-jobs server (prints its id, or its result with --wait)")
    submit.add_argument("task", metavar="TASK", help="a registered task name")
    submit.add_argument("--payload", default="{}", help="the task's input: JSON, or @FILE to read it from")
    submit.add_argument("--queue", default=None, help="queue to put it on (default: the server's)")
    submit.add_argument("--tag", action="append", default=None, help="a label (repeat for more)")
    submit.add_argument("--idempotency-key", default=None, help="default: one made for this submission")
    submit.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    submit.add_argument("--wait-timeout", type=float, default=None, help="seconds --wait waits at most")

    add("status", "show one job").add_argument("job_id", metavar="ID")
    watch = add("watch", "follow a job live until it ends (exit 0 if it finished, 3 if not)")
    watch.add_argument("job_id", metavar="ID")

    jobs = add("jobs", "list jobs, newest first")
    _add_filter_options(jobs, "a label (repeat: jobs carrying any of them)")
    jobs.add_argument("--order", choices=("newest-first", "oldest-first"), default="newest-first")
    jobs.add_argument("--limit", type=int, default=50, help="most jobs shown (0: all, page by page)")

    for name, help in (
        ("cancel", "cancel waiting jobs, or stop running ones"),
        ("requeue", "put FAILED, STOPPED or CANCELED jobs back on their queue"),
        ("delete", "delete jobs that are not running, with their results"),
    ):
        action = add(name, f"{help}: the IDs given, or every job the filter options select")
        action.add_argument("job_ids", metavar="ID", nargs="*")
        _add_filter_options(action, "a label (repeat: jobs carrying any of them)")
        action.add_argument("--yes", action="store_true", help="do not ask before a filter-based action")
        action.add_argument(
            "--one-call", action="store_true", help="one call only (the server's bulk limit), not until done"
        )
    queues = add("queues", "list queues with their job counts (admins: --empty one)")
    queues.add_argument("--empty", metavar="NAME", default=None, help="delete every job waiting on NAME")
    queues.add_argument("--yes", action="store_true", help="do not ask before --empty")
    workers = add("workers", "list workers, or suspend or resume them all (admins)")
    switch = workers.add_mutually_exclusive_group()
    switch.add_argument("--suspend", action="store_true", help="each finishes its job and takes no other")
    switch.add_argument("--resume", action="store_true", help="let suspended workers take jobs again")
    workers.add_argument(
        "--ttl", type=int, default=None, help="--suspend: resume by itself after TTL seconds"
    )
    stats = add("stats", "jobs submitted, finished and failed, and run times, per time bucket (admins)")
    stats.add_argument("--window", type=int, default=60, help="minutes back from now")
    stats.add_argument("--step", type=int, default=5, help="minutes per bucket (must divide --window)")
    stats.add_argument("--queue", default=None)
    stats.add_argument("--task", default=None)
    top = add("top", "a live view of queues and workers (Ctrl-C ends it)")
    top.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    top.add_argument("--iterations", type=int, default=0, help="stop after N refreshes (0: never)")


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows each default, except where there is none (the environment decides)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("GQL_JOBS_URL") or CLIENT_DEFAULT_URL,
        help="the server's base URL (env GQL_JOBS_URL)",
    )
    common.add_argument(
        "--key",
        default=None,
        help="API key (env GQL_JOBS_API_KEY; default: none, for an open API)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds per request (env GQL_JOBS_TIMEOUT; default: {CLIENT_DEFAULT_TIMEOUT:g})",
    )
    common.add_argument(
        "--retries",
        type=int,
        default=None,
        help=f"retries of a failed request (env GQL_JOBS_RETRIES; default: {CLIENT_DEFAULT_RETRIES})",
    )
    common.add_argument("--json", action="store_true", help="print JSON (the default when not on a terminal)")
    return common


def run(args: argparse.Namespace) -> int:
    """Run a client command: its output, one line on stderr for an error, and the exit code."""
    try:
        from gql_jobs.client import cli  # noqa: PLC0415 (needs the client extra)
    except ImportError as exc:
        missing = exc.name or str(exc)
        print(
            f"gql-jobs {args.client_command}: the client commands need the client extra "
            f"(pip install 'gql-jobs[client]'); missing: {missing}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return cli.run(args)
