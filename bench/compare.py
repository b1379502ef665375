"""Side by side in one run: CPU per request of gql-jobs, its baselines and its floors (issue #20).

    .venv/bin/python -m bench.compare [--jobs 2000] [--requests 300] [--rounds 3] [--output FILE]

In-process, like `bench.inprocess` (each ASGI app called directly, no HTTP server, no client: the
figures are the apps' own CPU, far less noisy on a shared machine than a load test), against one
private redis-server holding `--jobs` finished jobs. Apps: gql-jobs (`create_app`), the lesson's
(bench/lesson_app.py), a naive Strawberry + RQ app (bench/naive_app.py) and a bare-ASGI floor doing
our Redis work (bench/floor_app.py). Each scenario's figure is the best of `--rounds` of the
process CPU time per request (all threads: the sync baselines run on Starlette's pool), in
microseconds; the JSON written holds them and the ratios the README quotes.

Inline-value scenarios send a document never sent before on every request, in every round (a
new `user_id`, or the next of the stored jobs' ids: `--jobs` must cover rounds x (requests +
warm-up)), so none is a hit of the document cache by its text.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import workload
from bench.floor_app import floor_app
from bench.inprocess import call
from bench.run import GQL_INPUT, REST_BODY, RESULTS_DIR, SUBMIT_ONE, gql
from bench.stack import Stack
from bench.tasks import TASK, TASK_MODULES
from gql_jobs import heap
from gql_jobs.app import create_app
from gql_jobs.settings import Settings

PAGE_50 = "{ jobs(first: 50) { edges { cursor node { id status task submittedAt progress { current } } } } }"
PAGE_100_FULL = (
    "{ jobs(first: 100) { edges { node { id status task submittedAt payload result error { message } } } } }"
)
JOB_VARS = "query ($id: ID!) { job(id: $id) { id status result error { message } } }"
SUBMIT_FIELDS = "... on SubmitJobSuccess { job { id status submittedAt } } ... on Error { message }"
NAIVE_PAGE_50 = "{ jobs(first: 50) { id status task submittedAt progress } }"
NAIVE_JOB = "query ($id: ID!) { job(id: $id) { id status result error } }"
NAIVE_SUBMIT = "mutation ($input: SubmitJobInput!) { submitJob(input: $input) { id status submittedAt } }"

Request = tuple[str, str, bytes]
Requests = Callable[[int], Request]  # the i-th request of a scenario


def _job_inline(ids: Sequence[str]) -> Requests:
    # `job(id: "<id>")` with the next stored id each time: a document never sent before.
    unsent = iter(ids)

    def request(i: int) -> Request:
        job_id = next(unsent, None)
        if job_id is None:
            raise SystemExit("inline job(id) ran out of stored jobs to name once each: raise --jobs")
        return (
            "POST",
            "/graphql",
            gql(f'{{ job(id: "{job_id}") {{ id status result error {{ message }} }} }}').encode(),
        )

    return request


def _submit_inline() -> Requests:
    # A new `user_id` each time, whatever `i` is: rounds must not send a document twice.
    sent = itertools.count()
    return lambda i: _submission(next(sent))


def _submission(i: int) -> Request:
    document = (
        f'mutation {{ submitJob(input: {{task: "{TASK}", payload: {{user_id: {i}, message: "hello"}}, '
        f'tags: ["api", "v1"]}}) {{ {SUBMIT_FIELDS} }} }}'
    )
    return "POST", "/graphql", gql(document).encode()


def scenarios(ids: Sequence[str], every_id: Sequence[str]) -> dict[str, tuple[str, Requests]]:
    """Scenario name -> (app, the i-th request); inline documents name each of `every_id` once."""
    job_vars = [gql(JOB_VARS, {"id": i}).encode() for i in ids]
    naive_job = [gql(NAIVE_JOB, {"id": i}).encode() for i in ids]
    submit_vars = gql(SUBMIT_ONE, {"input": GQL_INPUT}).encode()
    naive_submit = gql(NAIVE_SUBMIT, {"input": GQL_INPUT}).encode()
    rest_body = REST_BODY.encode()
    return {
        "ours: jobs(first: 50)": ("ours", lambda i: ("POST", "/graphql", gql(PAGE_50).encode())),
        "ours: jobs(first: 100) payload result error": (
            "ours",
            lambda i: ("POST", "/graphql", gql(PAGE_100_FULL).encode()),
        ),
        "naive: jobs(first: 50)": ("naive", lambda i: ("POST", "/graphql", gql(NAIVE_PAGE_50).encode())),
        "floor: page of 50": ("floor", lambda i: ("GET", "/page/50", b"")),
        "ours: job(id) variables": ("ours", lambda i: ("POST", "/graphql", job_vars[i % len(ids)])),
        "ours: job(id) inline, new document": ("ours", _job_inline(every_id)),
        "naive: job(id)": ("naive", lambda i: ("POST", "/graphql", naive_job[i % len(ids)])),
        "floor: read": ("floor", lambda i: ("GET", f"/job/{ids[i % len(ids)]}", b"")),
        "ours: submitJob variables": ("ours", lambda i: ("POST", "/graphql", submit_vars)),
        "ours: submitJob inline, new document": ("ours", _submit_inline()),
        "naive: submitJob": ("naive", lambda i: ("POST", "/graphql", naive_submit)),
        "floor: submit": ("floor", lambda i: ("POST", "/submit", rest_body)),
        "ours: REST submit": ("ours", lambda i: ("POST", "/submit-job", rest_body)),
        "lesson: REST submit": ("lesson", lambda i: ("POST", "/submit-job", rest_body)),
        "ours: REST status": ("ours", lambda i: ("GET", f"/job-status/{ids[i % len(ids)]}", b"")),
        "lesson: REST status": ("lesson", lambda i: ("GET", f"/job-status/{ids[i % len(ids)]}", b"")),
    }


#: Ratios the README quotes: (label, numerator scenario, denominator scenario).
RATIOS = (
    ("page of 50: naive / ours", "naive: jobs(first: 50)", "ours: jobs(first: 50)"),
    ("page of 50: ours / floor", "ours: jobs(first: 50)", "floor: page of 50"),
    ("job(id): inline / variables", "ours: job(id) inline, new document", "ours: job(id) variables"),
    ("job(id): ours / floor", "ours: job(id) variables", "floor: read"),
    ("submitJob: inline / variables", "ours: submitJob inline, new document", "ours: submitJob variables"),
    ("submitJob: ours / floor", "ours: submitJob variables", "floor: submit"),
    ("submitJob: lesson REST / ours GraphQL", "lesson: REST submit", "ours: submitJob variables"),
    ("REST submit: lesson / ours", "lesson: REST submit", "ours: REST submit"),
    ("REST status: lesson / ours", "lesson: REST status", "ours: REST status"),
)


async def measure(redis_url: str, jobs: int, count: int, rounds: int) -> dict[str, float]:
    os.environ["REDIS_URL"] = redis_url
    from bench import lesson_app, naive_app  # noqa: PLC0415  # they read REDIS_URL at import

    settings = Settings.model_validate({"redis_url": redis_url, "tasks": TASK_MODULES.split(",")})
    ids = await asyncio.to_thread(workload.fill_service, redis_url, jobs)
    workload.drain(redis_url, evented=True)
    ours = create_app(settings)
    heap.freeze_startup_objects()  # as the app's lifespan does under a server (not run in-process)
    apps: dict[str, Any] = {
        "ours": ours,
        "lesson": lesson_app.app,
        "naive": naive_app.app,
        "floor": floor_app(settings, ours.state.service.registry),
    }
    best: dict[str, float] = {}
    plan = scenarios(ids[: min(len(ids), 500)], ids)
    for _ in range(rounds):
        for name, (app_name, request_of) in plan.items():
            app = apps[app_name]
            for i in range(max(1, count // 20)):  # warm-up
                await call(app, request_of(10_000_000 + i))
            requests = [request_of(i + int(time.time())) for i in range(count)]
            began = time.process_time()
            for request in requests:
                await call(app, request)
            per_request = (time.process_time() - began) / count * 1e6
            best[name] = min(best.get(name, per_request), per_request)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--jobs", type=int, default=2000, help="finished jobs stored (inline reads name each once)"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gql-jobs-compare-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            best = asyncio.run(measure(stack.redis_url, args.jobs, args.requests, args.rounds))
        finally:
            stack.stop_all()
    ratios = {label: round(best[a] / best[b], 2) for label, a, b in RATIOS}
    for name, micros in best.items():
        print(f"  {name:48} {micros:8.0f} us CPU per request")
    for label, ratio in ratios.items():
        print(f"  {label:48} {ratio:8.2f}x")
    output = args.output or RESULTS_DIR / f"{datetime.now(UTC):%Y-%m-%d}-compare.json"
    output.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "jobs_stored": args.jobs,
                "requests": args.requests,
                "rounds": args.rounds,
                "cpu_us_per_request": {k: round(v) for k, v in best.items()},
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"  written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
