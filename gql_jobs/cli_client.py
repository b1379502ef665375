"""The client's `gql-jobs` subcommands, declared: argparse only, so `gql-jobs` lists them on a
server without the client extra (importing `gql_jobs.client` needs it). Each runs through `run`,
which imports the client (or says which extra to install) and turns every client error into one
line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gql_jobs.constants import CLIENT_DEFAULT_RETRIES, CLIENT_DEFAULT_TIMEOUT, CLIENT_DEFAULT_URL

#: Exit codes: an error the user can fix (bad input, refused), the job did not succeed, interrupted.
EXIT_ERROR = 1
EXIT_JOB_FAILED = 3
EXIT_INTERRUPTED = 130
STATUSES = ("queued", "started", "finished", "failed", "deferred", "scheduled", "stopped", "canceled")


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
    jobs.add_argument("--status", choices=STATUSES, default=None)
    jobs.add_argument("--queue", default=None)
    jobs.add_argument("--task", default=None)
    jobs.add_argument("--tag", default=None)
    jobs.add_argument("--limit", type=int, default=50, help="most jobs shown (0: all, page by page)")

    for name, help in (
        ("cancel", "cancel a waiting job, or stop a running one"),
        ("requeue", "put a FAILED, STOPPED or CANCELED job back on its queue"),
        ("delete", "delete a job that is not running, with its results"),
    ):
        add(name, help).add_argument("job_id", metavar="ID")
    add("queues", "list queues with their job counts")
    add("workers", "list workers")
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
