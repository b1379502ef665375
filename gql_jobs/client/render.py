"""How the client commands print: rich tables, colour and a progress bar on a terminal; one JSON
document per answer (or per update, for `watch` and `top`) otherwise. The JSON is the API's own
shape (camelCase fields, as the generated models' aliases spell them)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Column, Table

from gql_jobs.client.async_client import Job, JobStats, Queue, Worker
from gql_jobs.client.bulk import BulkOutcome

STATUS_STYLES = {
    "QUEUED": "cyan",
    "STARTED": "yellow",
    "FINISHED": "green",
    "FAILED": "bold red",
    "STOPPED": "red",
    "CANCELED": "magenta",
    "DEFERRED": "blue",
    "SCHEDULED": "blue",
}


SPARKS = "▁▂▃▄▅▆▇█"


def as_json(value: Any) -> Any:
    if isinstance(value, BulkOutcome):
        return {
            "matched": value.matched,
            "acted": value.acted,
            "actedIds": value.acted_ids,
            "skipped": as_json(value.skipped),
            "truncated": value.truncated,
            "cursor": value.cursor,
            "calls": value.calls,
        }
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return value


class Output:
    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.console = Console()
        self.errors = Console(stderr=True)

    def emit(self, value: Any) -> None:
        sys.stdout.write(json.dumps(as_json(value)) + "\n")
        sys.stdout.flush()

    def job_submitted(self, job: Job) -> None:
        if self.json_mode:
            self.emit(job)
        else:
            self.console.print(f"{job.id} [{_style(job)}]{job.status.value}[/]")

    def result(self, job_id: str, result: Any) -> None:
        if self.json_mode:
            self.emit({"id": job_id, "status": "FINISHED", "result": result})
        else:
            self.console.print_json(json.dumps(result))

    def job(self, job: Job) -> None:
        if self.json_mode:
            self.emit(job)
            return
        table = Table(show_header=False, box=None)
        for name, value in _job_rows(job):
            table.add_row(f"[bold]{name}[/]", value)
        self.console.print(table)
        attempts = getattr(job, "attempts", None)  # `get` reads them; a listed job has none
        if attempts:
            runs = Table("attempt", "outcome", "worker", "duration", "error", title="attempts")
            for number, attempt in enumerate(attempts, 1):
                error = attempt.error
                runs.add_row(
                    str(number),
                    attempt.outcome.value,
                    attempt.worker_name or "",
                    "" if attempt.duration_seconds is None else f"{attempt.duration_seconds:.2f} s",
                    f"{error.type_ or ''}: {error.message}".lstrip(": ") if error else "",
                )
            self.console.print(runs)

    def bulk(self, what: str, outcome: BulkOutcome) -> None:
        """Counts, then each skipped job with why (what `--json` gives in full)."""
        if self.json_mode:
            self.emit(outcome)
            return
        calls = f" in {outcome.calls} calls" if outcome.calls > 1 else ""
        self.console.print(f"{what} {outcome.acted} of {outcome.matched} matched jobs{calls}")
        if outcome.skipped:
            table = Table("skipped", "status", "reason", "why", title=f"{len(outcome.skipped)} skipped")
            for skip in outcome.skipped:
                table.add_row(
                    skip.id, skip.status.value if skip.status else "", skip.reason.value, skip.message
                )
            self.console.print(table)
        if outcome.truncated:
            self.console.print("[yellow]more jobs may match: run it again[/]")

    def suspension(self, suspended: bool) -> None:
        if self.json_mode:
            self.emit({"workersSuspended": suspended})
        else:
            self.console.print("workers suspended" if suspended else "workers running (not suspended)")

    def emptied(self, queue: str, deleted: int) -> None:
        if self.json_mode:
            self.emit({"queue": queue, "deleted": deleted})
        else:
            self.console.print(f"{queue}: {deleted} waiting jobs deleted")

    def stats(self, stats: JobStats) -> None:
        """A row per bucket, then a sparkline per count over the window."""
        if self.json_mode:
            self.emit(stats)
            return
        scope = ", ".join(f"{k} {v}" for k, v in (("queue", stats.queue), ("task", stats.task)) if v)
        title = f"last {stats.window} min by {stats.step} min" + (f" ({scope})" if scope else "")
        table = Table("from (UTC)", "submitted", "finished", "failed", "p50 s", "p90 s", "max s", title=title)
        for bucket in [*stats.buckets, stats.totals]:
            run = bucket.run_time
            table.add_row(
                "total" if bucket is stats.totals else bucket.start.strftime("%H:%M"),
                str(bucket.submitted),
                str(bucket.finished),
                str(bucket.failed),
                *(_seconds(value) for value in (run.p_50, run.p_90, run.max)),
                end_section=bucket is stats.buckets[-1],
            )
        self.console.print(table)
        for name, style in (("submitted", "cyan"), ("finished", "green"), ("failed", "red")):
            counts = [getattr(bucket, name) for bucket in stats.buckets]
            self.console.print(f"{name:>9} [{style}]{sparkline(counts)}[/]")

    def job_changed(self, what: str, job: Job) -> None:
        if self.json_mode:
            self.emit(job)
        else:
            self.console.print(f"{job.id} {what}: [{_style(job)}]{job.status.value}[/]")

    def deleted(self, job_id: str) -> None:
        if self.json_mode:
            self.emit({"id": job_id, "deleted": True})
        else:
            self.console.print(f"{job_id} deleted")

    def job_ended(self, job: Job) -> None:
        """The end of `watch` (or `submit --wait`): the result, or the error with its traceback."""
        if self.json_mode:
            if not self._streamed:
                self.emit(job)
            return
        if job.status.value == "FINISHED":
            self.console.print(f"[green]{job.id} FINISHED[/]")
            self.console.print_json(json.dumps(job.result))
            return
        self.errors.print(f"[{_style(job)}]{job.id} {job.status.value}[/]")
        if job.error is not None:
            self.errors.print(job.error.traceback or job.error.message, markup=False, highlight=False)

    _streamed = False

    @contextmanager
    def watching(self) -> Iterator[Callable[[Job], None]]:
        """`show(job)` at each update: a JSON line each, or a live bar with the task's message."""
        if self.json_mode:
            self._streamed = True
            yield self.emit
            return
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=self.console,
        )
        bar = progress.add_task("", total=None, note="")
        with progress:

            def show(job: Job) -> None:
                report = job.progress
                note = (report.message or "") if report else ""
                total = report.total if report else None
                finished = job.status.value == "FINISHED"
                progress.update(
                    bar,
                    description=f"{job.task or job.id} [{_style(job)}]{job.status.value}[/]",
                    total=total if total is not None else (1 if finished else None),
                    completed=(report.current if report else 0) if not finished or total else 1,
                    note=note,
                )

            yield show

    @contextmanager
    def top(self) -> Iterator[Callable[[Sequence[Queue], Sequence[Worker], bool | None], None]]:
        """`show(queues, workers, suspended)`; `suspended` is None when the key may not know."""
        if self.json_mode:
            yield lambda queues, workers, suspended: self.emit(
                {
                    "queues": as_json(list(queues)),
                    "workers": as_json(list(workers)),
                    "workersSuspended": suspended,
                }
            )
            return
        with Live(console=self.console, auto_refresh=False, screen=False) as live:

            def show(queues: Sequence[Queue], workers: Sequence[Worker], suspended: bool | None) -> None:
                when = datetime.now(UTC).strftime("%H:%M:%S UTC")
                parts: list[Any] = [_queue_table(queues, when), _worker_table(workers)]
                if suspended:
                    parts.insert(0, "[bold yellow]workers SUSPENDED: they take no new jobs[/]")
                live.update(Group(*parts), refresh=True)

            yield show

    def jobs(self, jobs: list[Job]) -> None:
        if self.json_mode:
            self.emit(jobs)
            return
        table = Table(
            Column("status", no_wrap=True, min_width=9), "task", "queue", "progress", "submitted", "tags"
        )
        # Ids stay whole (people copy them into `status`, `watch`...): the other columns give way.
        table.columns.insert(
            0, Column("id", no_wrap=True, min_width=max((len(j.id) for j in jobs), default=2))
        )
        for job in jobs:
            table.add_row(
                job.id,
                f"[{_style(job)}]{job.status.value}[/]",
                job.task or "",
                job.queue,
                _percent(job),
                _when(job.submitted_at, short=True),
                ", ".join(job.tags),
            )
        self.console.print(table)

    def queues(self, queues: list[Queue]) -> None:
        if self.json_mode:
            self.emit(queues)
        else:
            self.console.print(_queue_table(queues))

    def workers(self, workers: list[Worker]) -> None:
        if self.json_mode:
            self.emit(workers)
        else:
            self.console.print(_worker_table(workers))


def _queue_table(queues: Sequence[Queue], title: str | None = None) -> Table:
    table = Table("queue", "queued", "started", "failed", title=title and f"queues at {title}")
    for queue in queues:
        table.add_row(queue.name, *(_count(n) for n in (queue.queued, queue.started, queue.failed)))
    return table


def _worker_table(workers: Sequence[Worker]) -> Table:
    table = Table("worker", "state", "queues", "current job", "finished", "failed")
    for worker in workers:
        table.add_row(
            worker.name,
            worker.state,
            ", ".join(worker.queues),
            worker.current_job_id or "",
            _count(worker.successful_job_count),
            _count(worker.failed_job_count),
        )
    return table


def _job_rows(job: Job) -> list[tuple[str, str]]:
    rows = [
        ("id", job.id),
        ("status", f"[{_style(job)}]{job.status.value}[/]"),
        ("task", job.task or ""),
        ("queue", job.queue),
        ("tags", ", ".join(job.tags)),
        ("submitted", _when(job.submitted_at)),
        ("started", _when(job.started_at)),
        ("ended", _when(job.ended_at)),
        ("worker", job.worker_name or ""),
    ]
    if job.progress is not None:
        rows.append(("progress", f"{_percent(job)} {job.progress.message or ''}".strip()))
    if job.result is not None:
        rows.append(("result", json.dumps(job.result)))
    if job.error is not None:
        rows.append(("error", f"{job.error.type_ or ''}: {job.error.message}".lstrip(": ")))
    return rows


def _style(job: Job) -> str:
    return STATUS_STYLES.get(job.status.value, "white")


def _percent(job: Job) -> str:
    report = job.progress
    if report is None:
        return ""
    if report.fraction is not None:
        return f"{report.fraction:.0%}"
    return f"{report.current:g}"


def _when(moment: datetime | None, short: bool = False) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if short else moment.isoformat(timespec="seconds")


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def sparkline(counts: Sequence[int]) -> str:
    """One block per count, its height relative to the largest (zero: the lowest block)."""
    top = max(counts, default=0)
    if top == 0:
        return SPARKS[0] * len(counts)
    return "".join(SPARKS[round(count / top * (len(SPARKS) - 1))] for count in counts)
