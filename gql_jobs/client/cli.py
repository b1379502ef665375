"""The client commands' work: call the client, print for people (rich) or as JSON (when piped, or
with --json), and turn every failure into one line on stderr and an exit code (`commands.py`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gql_jobs.cli_client import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_JOB_FAILED
from gql_jobs.client import render
from gql_jobs.client.async_client import FINAL_STATUSES, Job
from gql_jobs.client.errors import ClientError, JobFailedError, UnknownTaskError
from gql_jobs.client.sync_client import GqlJobsClient

Handler = Callable[[GqlJobsClient, argparse.Namespace, render.Output], int]


class UsageError(Exception):
    """A bad argument (a payload that is not JSON, an unreadable @file)."""


def run(args: argparse.Namespace) -> int:
    out = render.Output(json_mode=args.json or not sys.stdout.isatty())
    name = args.client_command
    try:
        with GqlJobsClient(args.url, api_key=args.key, timeout=args.timeout, retries=args.retries) as client:
            try:
                return HANDLERS[name](client, args, out)
            except UnknownTaskError as exc:
                known = ", ".join(task.name for task in client.tasks())
                return _fail(name, f"{exc.message} (known tasks: {known})")
    except (ClientError, UsageError, ValueError) as exc:
        return _fail(name, str(exc))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours, or an answer we did not expect: still one line
        return _fail(name, f"unexpected {type(exc).__name__}: {exc}")


def _fail(command: str, message: str) -> int:
    print(f"gql-jobs {command}: {message}", file=sys.stderr)
    return EXIT_ERROR


def _submit(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    payload = _payload(args.payload)
    job = client.submit(
        args.task, payload, queue=args.queue, tags=args.tag, idempotency_key=args.idempotency_key
    )
    if not args.wait:
        out.job_submitted(job)
        return 0
    try:
        result = client.wait(job.id, timeout=args.wait_timeout)
    except JobFailedError as exc:
        out.job_ended(exc.job)
        return EXIT_JOB_FAILED
    except TimeoutError:
        raise UsageError(f"{job.id} did not end within --wait-timeout {args.wait_timeout:g} s") from None
    out.result(job.id, result)
    return 0


def _payload(raw: str) -> Any:
    text = raw
    if raw.startswith("@"):
        try:
            text = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--payload {raw}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--payload is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _status(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.job(client.get(args.job_id))
    return 0


def _watch(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    last: Job | None = None
    with out.watching() as show:
        for job in client.follow(args.job_id):
            last = job
            show(job)
    if last is None or last.status not in FINAL_STATUSES:
        last = client.get(args.job_id)
    out.job_ended(last)
    return 0 if last.status.value == "FINISHED" else EXIT_JOB_FAILED


def _jobs(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    found = client.jobs(
        status=args.status, queue=args.queue, task=args.task, tag=args.tag, limit=args.limit or None
    )
    out.jobs(list(found))
    return 0


def _cancel(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.job_changed("canceled", client.cancel(args.job_id))
    return 0


def _requeue(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.job_changed("requeued", client.requeue(args.job_id))
    return 0


def _delete(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.deleted(client.delete(args.job_id))
    return 0


def _queues(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.queues(client.queues())
    return 0


def _workers(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.workers(client.workers())
    return 0


def _top(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    """Refresh every `--interval` seconds (a display's pace, not a synchronisation)."""
    shown = 0
    with out.top() as show:
        while True:
            show(client.queues(), client.workers())
            shown += 1
            if args.iterations and shown >= args.iterations:
                return 0
            time.sleep(args.interval)


HANDLERS: dict[str, Handler] = {
    "submit": _submit,
    "status": _status,
    "watch": _watch,
    "jobs": _jobs,
    "cancel": _cancel,
    "requeue": _requeue,
    "delete": _delete,
    "queues": _queues,
    "workers": _workers,
    "top": _top,
}
