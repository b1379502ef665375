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
from gql_jobs.client.bulk import BulkOutcome
from gql_jobs.client.errors import ClientError, JobFailedError, UnauthorizedError, UnknownTaskError
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


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    """The filter options as the client's criteria: one --tag is `tag`, several are any-of `tags`."""
    tags: list[str] = args.tag or []
    criteria = {
        "status": args.status,
        "queue": args.queue,
        "task": args.task,
        "tag": tags[0] if len(tags) == 1 else None,
        "tags": tags if len(tags) > 1 else None,
        "submitted_after": args.since,
        "submitted_before": args.until,
    }
    return {name: value for name, value in criteria.items() if value is not None}


def _jobs(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    found = client.jobs(**_selection(args), order=args.order, limit=args.limit or None)
    out.jobs(list(found))
    return 0


def _confirm(question: str, args: argparse.Namespace) -> bool:
    """Ask on a terminal (unless --yes); a script (no terminal) is not asked. The question goes
    to stderr, so that `--json` output stays one document."""
    if args.yes or not sys.stdin.isatty():
        return True
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")


def _bulk_action(one: str, many: str, done: str) -> Handler:
    """A `cancel`/`requeue`/`delete` handler: one ID as before (the job, or why not), several IDs
    or filter options as a bulk action (counts and skipped ids with reasons)."""

    def handler(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
        criteria = _selection(args)
        if args.job_ids and criteria:
            raise UsageError("give job IDs or filter options, not both")
        if not args.job_ids and not criteria:
            raise UsageError(
                "give job IDs or filter options (--status, --queue, --task, --tag, --since, --until)"
            )
        if len(args.job_ids) == 1:
            result = getattr(client, one)(args.job_ids[0])
            if isinstance(result, str):
                out.deleted(result)
            else:
                out.job_changed(done, result)
            return 0
        if criteria:
            shown = " ".join(f"{name}={value}" for name, value in criteria.items())
            if not _confirm(f"{args.client_command} every job with {shown}?", args):
                print(f"gql-jobs {args.client_command}: not confirmed; nothing done", file=sys.stderr)
                return EXIT_ERROR
        selection = criteria or {"ids": args.job_ids}
        outcome: BulkOutcome = getattr(client, many)(all_pages=not args.one_call, **selection)
        out.bulk(done, outcome)
        return 0

    return handler


def _queues(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    if args.empty is None:
        out.queues(client.queues())
        return 0
    if not _confirm(f"delete every job waiting on {args.empty}?", args):
        print("gql-jobs queues: not confirmed; nothing done", file=sys.stderr)
        return EXIT_ERROR
    out.emptied(args.empty, client.empty_queue(args.empty))
    return 0


def _workers(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    if args.ttl is not None and not args.suspend:
        raise UsageError("--ttl goes with --suspend")
    if args.suspend:
        out.suspension(client.suspend_workers(args.ttl))
    elif args.resume:
        out.suspension(client.resume_workers())
    else:
        out.workers(client.workers())
    return 0


def _stats(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    out.stats(client.stats(args.window, args.step, queue=args.queue, task=args.task))
    return 0


def _suspended(client: GqlJobsClient) -> bool | None:
    """Whether workers are suspended; None for a key that may not ask (it still sees the rest)."""
    try:
        return client.workers_suspended()
    except UnauthorizedError:
        return None


def _top(client: GqlJobsClient, args: argparse.Namespace, out: render.Output) -> int:
    """Refresh every `--interval` seconds (a display's pace, not a synchronisation)."""
    shown = 0
    with out.top() as show:
        while True:
            show(client.queues(), client.workers(), _suspended(client))
            shown += 1
            if args.iterations and shown >= args.iterations:
                return 0
            time.sleep(args.interval)


HANDLERS: dict[str, Handler] = {
    "submit": _submit,
    "status": _status,
    "watch": _watch,
    "jobs": _jobs,
    "cancel": _bulk_action("cancel", "cancel_jobs", "canceled"),
    "requeue": _bulk_action("requeue", "requeue_jobs", "requeued"),
    "delete": _bulk_action("delete", "delete_jobs", "deleted"),
    "queues": _queues,
    "workers": _workers,
    "stats": _stats,
    "top": _top,
}
