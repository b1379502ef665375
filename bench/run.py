"""gql-jobs' performance figures and targets (issue #7), in one command.

    .venv/bin/python -m bench [--rounds 3] [--duration 5] [--quick] [--full] [--subscriptions]

Starts its own redis-server (loopback, free port, no persistence), the API under uvicorn in 1 and
N processes (`gql-jobs serve --no-access-log --workers N`; N = CPUs by default), the lesson's
approach the same way (bench/lesson_app.py), workers as needed, and a load generator in a process
of its own (wrk when installed, else an asyncio + httpx client: bench/loadgen.py). Every figure is
the median of `--rounds` rounds with min and max; rounds of a figure are interleaved across its
scenarios, so a drift in machine load spreads over all of them. Each measurement records the
1-minute load average and the CPU the API and Redis used.

Figures
  1. submit: jobs/s, p50/p99 at each concurrency: POST /submit-job (ours, lesson's), submitJob,
     submitJobs (100 jobs per call); raw RQ Queue.enqueue / enqueue_many in one process
  2. read: GET /job-status/{id} (ours, lesson's) and job(id) on finished jobs; jobs(first: 50) with
     and without a filter (status: FINISHED)
  3. cost growth: jobs(first: 50) p50 (one client) with 1k, 100k (and with --full 1M) jobs stored,
     filled through JobService.submit_many in batches of 500; Redis commands and round trips per page
  4. Redis commands and round trips per operation (INFO commandstats and total_reads_processed
     deltas over sequential requests; a read event is a round trip for requests under 16 KB)
  5. Redis memory per finished job (used_memory delta over 10k jobs run by a worker): ours, lesson's
  6. worker drain rate of no-op jobs: `rq worker -S json` vs `gql-jobs worker` (both RQ fork
     workers), `rq worker-pool -S json -n 2` vs `gql-jobs worker --pool 2`
  7. (--subscriptions) subscription latency, bench/subscription_latency.py's `events` scenario

Output: tables and the targets (ratio, PASS/MISS) on stdout, JSON in bench/results/<date>.json
(<date>-quick.json with --quick). Exit status 0 when the run completed, whatever the targets say.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bench import report, workload
from bench.loadgen import Check, Client, LoadSpec, RunningLoad, available_client, run_load
from bench.processes import ROOT
from bench.stack import Api, ApiKind, Counters, Stack, counters, cpu_seconds, worker_argv
from bench.tasks import TASK

RESULTS_DIR = ROOT / "bench" / "results"
BATCH = 100
READ_CONCURRENCY = 16
INDEX_ALL = "gql_jobs:listing:all"
QUEUE_KEY = "rq:queue:default"

REST_BODY = json.dumps({"task": TASK, "payload": workload.PAYLOAD}, separators=(",", ":"))
GQL_INPUT: dict[str, Any] = {"task": TASK, "payload": workload.PAYLOAD, "tags": ["api", "v1"]}
SUBMIT_FIELDS = (
    "__typename ... on SubmitJobSuccess { job { id status submittedAt } } ... on Error { message }"
)
SUBMIT_ONE = f"mutation ($input: SubmitJobInput!) {{ submitJob(input: $input) {{ {SUBMIT_FIELDS} }} }}"
SUBMIT_MANY = (
    f"mutation ($inputs: [SubmitJobInput!]!) {{ submitJobs(inputs: $inputs) {{ {SUBMIT_FIELDS} }} }}"
)
JOB_QUERY = (
    "query ($id: ID!) { job(id: $id) { id status rawStatus meta enqueuedAt startedAt endedAt result "
    "error { message traceback } } }"
)
PAGE_FIELDS = "edges { cursor node { id status task submittedAt } } pageInfo { hasNextPage endCursor }"
JOBS_PAGE = f"{{ jobs(first: 50) {{ {PAGE_FIELDS} }} }}"
JOBS_PAGE_FILTERED = f"{{ jobs(first: 50, filter: {{status: FINISHED}}) {{ {PAGE_FIELDS} }} }}"


def gql(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": query, "variables": variables or {}}, separators=(",", ":"))


# -- operations and scenarios ---------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    label: str
    figure: Literal["submit", "read"]
    kinds: tuple[ApiKind, ...]  # which APIs offer it
    jobs_per_request: int = 1
    check: Check = "http"
    multi: bool = True  # measured on the N-process APIs too


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("rest_submit", "POST /submit-job", "submit", ("ours", "lesson")),
        Op("gql_submit", "submitJob", "submit", ("ours",), check="graphql"),
        Op("gql_submit_batch", f"submitJobs ({BATCH}/call)", "submit", ("ours",), BATCH, "graphql", False),
        Op("rest_status", "GET /job-status/{id}", "read", ("ours", "lesson")),
        Op("gql_job", "job(id)", "read", ("ours",), check="graphql"),
        Op("gql_jobs", "jobs(first: 50)", "read", ("ours",), check="graphql", multi=False),
        # No resolver, no Redis: what Strawberry + FastAPI cost per request on their own.
        Op("gql_floor", "{ __typename } (GraphQL floor)", "read", ("ours",), check="graphql"),
        Op("gql_jobs_filtered", "jobs(first: 50, status: FINISHED)", "read", ("ours",), 1, "graphql", False),
    )
}


def request_of(op: Op, ids: Sequence[str]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Method, paths and bodies (each used in turn) of an operation."""
    if op.name == "rest_submit":
        return "POST", ("/submit-job",), (REST_BODY,)
    if op.name == "gql_submit":
        return "POST", ("/graphql",), (gql(SUBMIT_ONE, {"input": GQL_INPUT}),)
    if op.name == "gql_submit_batch":
        return "POST", ("/graphql",), (gql(SUBMIT_MANY, {"inputs": [GQL_INPUT] * BATCH}),)
    if op.name == "rest_status":
        return "GET", tuple(f"/job-status/{i}" for i in ids), ()
    if op.name == "gql_job":
        return "POST", ("/graphql",), tuple(gql(JOB_QUERY, {"id": i}) for i in ids)
    if op.name == "gql_jobs":
        return "POST", ("/graphql",), (gql(JOBS_PAGE),)
    if op.name == "gql_floor":
        return "POST", ("/graphql",), (gql("{ __typename }"),)
    if op.name == "gql_jobs_filtered":
        return "POST", ("/graphql",), (gql(JOBS_PAGE_FILTERED),)
    raise ValueError(op.name)


@dataclass(frozen=True)
class Scenario:
    op: Op
    api: str
    concurrency: int

    @property
    def key(self) -> str:
        return f"{self.op.name}|{self.api}|c{self.concurrency}"


# -- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    rounds: int
    duration: float
    warmup: float
    quick: bool
    full: bool
    processes: int
    concurrencies: tuple[int, ...]
    sizes: tuple[int, ...]
    read_jobs: int
    memory_jobs: int
    drain_jobs: int
    sequential_requests: int
    max_requests: int
    loadgen: Client
    subscriptions: bool
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, help="rounds per figure (3; --quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds per load measurement (5; --quick: 0.5)")
    parser.add_argument("--quick", action="store_true", help="1 round, tiny durations and sizes (smoke)")
    parser.add_argument("--full", action="store_true", help="cost growth up to 1M jobs (a few minutes more)")
    parser.add_argument("--sizes", help="comma-separated job counts for cost growth (1000,100000)")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 2, help="N of the N-process APIs (CPUs; 1: skip)"
    )
    parser.add_argument("--concurrency", help="comma-separated submit concurrencies (16,64)")
    parser.add_argument("--memory-jobs", type=int, help="finished jobs for the memory figure (10000)")
    parser.add_argument(
        "--drain-jobs", type=int, help="jobs per drain measurement (200 x duration: ~15 s at 60 jobs/s)"
    )
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="cap per load measurement")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--subscriptions", action="store_true", help="add the subscription latency figure")
    parser.add_argument("--output", type=Path, help="JSON file (bench/results/<date>.json)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    rounds = args.rounds or (1 if quick else 3)
    duration = args.duration or (0.5 if quick else 5.0)
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    elif quick:
        sizes = (1000, 2000)
    else:
        sizes = (1000, 100_000, 1_000_000) if args.full else (1000, 100_000)
    if args.concurrency:
        concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    else:
        concurrencies = (16,) if quick else (16, 64)
    stem = datetime.now(UTC).date().isoformat() + ("-quick" if quick else "")
    return Options(
        rounds=rounds,
        duration=duration,
        warmup=0.0 if quick else 1.0,
        quick=quick,
        full=bool(args.full),
        processes=args.processes,
        concurrencies=concurrencies,
        sizes=tuple(sorted(sizes)),
        read_jobs=100 if quick else 1000,
        memory_jobs=args.memory_jobs or (200 if quick else 10_000),
        drain_jobs=args.drain_jobs or max(20, round(200 * duration)),
        sequential_requests=5 if quick else 100,
        max_requests=args.max_requests,
        loadgen=available_client(args.loadgen),
        subscriptions=bool(args.subscriptions),
        output=args.output or RESULTS_DIR / f"{stem}.json",
    )


# -- the run --------------------------------------------------------------------------------------


def spread(values: Sequence[float | None], digits: int = 2) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "min": None, "max": None}
    return {
        "median": round(statistics.median(present), digits),
        "min": round(min(present), digits),
        "max": round(max(present), digits),
    }


def say(text: str) -> None:
    print(text, flush=True)


class Bench:
    def __init__(self, stack: Stack, options: Options, pool: concurrent.futures.Executor) -> None:
        self.stack = stack
        self.options = options
        self.pool = pool
        self.redis = stack.client()
        self.url = stack.redis_url

    # -- helpers ----------------------------------------------------------------------------------

    def flush(self) -> None:
        self.redis.flushall()

    def settle(self, quiet: float = 0.5, limit: float = 30.0) -> None:
        """Wait until requests the load generator abandoned have finished writing (the queue is
        still for `quiet` s), so they do not land in the next measurement."""
        deadline = time.monotonic() + limit
        seen = int(self.redis.llen(QUEUE_KEY))
        still_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - still_since < quiet:
            time.sleep(0.05)
            now = int(self.redis.llen(QUEUE_KEY))
            if now != seen:
                seen, still_since = now, time.monotonic()

    def in_parallel(
        self, calls: list[tuple[Callable[..., Any], tuple[Any, ...]]], timeout: float
    ) -> list[Any]:
        futures = [self.pool.submit(func, *args) for func, args in calls]
        return [future.result(timeout=timeout) for future in futures]

    def fill(self, count: int, lesson: bool = False, parts: int = 2) -> list[str]:
        """`count` jobs, written by `parts` processes at once."""
        func = workload.fill_lesson if lesson else workload.fill_service
        shares = [count // parts + (1 if i < count % parts else 0) for i in range(parts)]
        found = self.in_parallel([(func, (self.url, share)) for share in shares if share], timeout=3600)
        return [job_id for ids in found for job_id in ids]

    def drain(self, evented: bool) -> int:
        return sum(self.in_parallel([(workload.drain, (self.url, evented))] * 2, timeout=3600))

    def scenarios(self, figure: str) -> list[Scenario]:
        found: list[Scenario] = []
        for api in self.stack.apis.values():
            for op in OPS.values():
                if op.figure != figure or api.kind not in op.kinds or (api.processes > 1 and not op.multi):
                    continue
                levels = self.options.concurrencies if figure == "submit" else (READ_CONCURRENCY,)
                found.extend(Scenario(op, api.name, c) for c in levels)
        return found

    def spec(self, scenario: Scenario, ids: Sequence[str], duration: float) -> LoadSpec:
        method, paths, bodies = request_of(scenario.op, ids)
        api = self.stack.apis[scenario.api]
        return LoadSpec(
            base_url=api.base_url,
            paths=paths,
            method=method,
            bodies=bodies,
            concurrency=scenario.concurrency,
            duration=duration,
            max_requests=self.options.max_requests,
            check=scenario.op.check,
        )

    def measure(self, scenario: Scenario, ids: Sequence[str], duration: float) -> dict[str, Any]:
        """One load measurement, with the CPU the API and Redis used meanwhile."""
        api = self.stack.apis[scenario.api]
        load = os.getloadavg()[0]
        redis_pid = self.stack.redis_proc.process.pid if self.stack.redis_proc else 0
        api_cpu, redis_cpu, began = (
            cpu_seconds(api.proc.process.pid),
            cpu_seconds(redis_pid),
            time.monotonic(),
        )
        if scenario.op.figure == "submit":
            row = self.measure_submit(scenario, duration)
        else:
            result = run_load(self.spec(scenario, ids, duration), self.options.loadgen)
            row = result.as_json() | {"jobs_per_s": result.rps}
        elapsed = time.monotonic() - began
        return {
            "api_cpu_pct": round(100 * (cpu_seconds(api.proc.process.pid) - api_cpu) / elapsed, 1),
            "redis_cpu_pct": round(100 * (cpu_seconds(redis_pid) - redis_cpu) / elapsed, 1),
            "loadavg_1m": load,
        } | row  # a submit measurement has its own CPU figures, over its window

    def measure_submit(self, scenario: Scenario, duration: float) -> dict[str, Any]:
        """Jobs/s as Redis saw them land, over a window after a ramp-up (starting from empty).

        Counting in Redis rather than answers keeps requests still under way at the end from
        being lost. A batch call of 100 jobs can take seconds under load, and concurrent calls
        tend to finish together: its ramp lasts until the first jobs land, and its window is at
        least twice that (capped at 3 x duration), so it spans a few such waves.
        """
        self.flush()
        batch = scenario.op.jobs_per_request > 1
        ramp_max = 3 * duration if batch else min(1.0, duration / 2)
        window_max = 3 * duration if batch else duration
        spec = self.spec(scenario, (), ramp_max + window_max + 1)
        redis_pid = self.stack.redis_proc.process.pid if self.stack.redis_proc else 0
        pids = (self.stack.apis[scenario.api].proc.process.pid, redis_pid)
        running = RunningLoad(spec, self.options.loadgen)
        try:
            started = time.monotonic()
            while time.monotonic() < started + ramp_max:
                if batch and int(self.redis.llen(QUEUE_KEY)) > 0:
                    break
                time.sleep(0.02)
            first, at_first = int(self.redis.llen(QUEUE_KEY)), time.monotonic()
            cpu_first = [cpu_seconds(pid) for pid in pids]
            ramp = at_first - started
            window = min(window_max, max(duration, 2 * ramp)) if batch else duration
            time.sleep(max(0.0, at_first + window - time.monotonic()))
            last, at_last = int(self.redis.llen(QUEUE_KEY)), time.monotonic()
            cpu_last = [cpu_seconds(pid) for pid in pids]
        finally:
            running.stop()
        result = running.result()
        self.settle()
        row = result.as_json() | {
            "jobs_per_s": round((last - first) / (at_last - at_first), 1),
            "ramp_s": round(ramp, 2),
            "window_s": round(at_last - at_first, 2),
            "jobs_in_window": last - first,
            "jobs_stored": int(self.redis.llen(QUEUE_KEY)),
            "api_cpu_pct": round(100 * (cpu_last[0] - cpu_first[0]) / (at_last - at_first), 1),
            "redis_cpu_pct": round(100 * (cpu_last[1] - cpu_first[1]) / (at_last - at_first), 1),
        }
        if row["jobs_stored"] < result.ok * scenario.op.jobs_per_request:
            row["warning"] = f"only {row['jobs_stored']} jobs in Redis for {result.ok} ok answers"
        return row

    def run_rounds(self, scenarios: list[Scenario], ids: Sequence[str], tag: str) -> dict[str, Any]:
        if self.options.warmup:  # once per API and operation, at the lowest concurrency
            warm = {(s.api, s.op.name): s for s in sorted(scenarios, key=lambda s: -s.concurrency)}
            for scenario in warm.values():
                self.measure(scenario, ids, self.options.warmup)
        rows: dict[str, list[dict[str, Any]]] = {s.key: [] for s in scenarios}
        for number in range(1, self.options.rounds + 1):
            for scenario in scenarios:
                row = self.measure(scenario, ids, self.options.duration)
                rows[scenario.key].append(row)
                api = self.stack.apis[scenario.api]
                say(
                    f"  [{tag} {number}] {api.label:13} {scenario.op.label:36} c{scenario.concurrency:<3} "
                    f"{row['jobs_per_s']:>9.1f} {'jobs' if tag == 'submit' else 'req'}/s  "
                    f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
                    f"API CPU {row['api_cpu_pct']:.0f}%  failed {row['failed']}"
                    + (f"  ({row['first_error'][:100]})" if row["first_error"] else "")
                )
        return {s.key: summarize_load(s, self.stack.apis[s.api], rows[s.key]) for s in scenarios}

    def sequential(self, api: Api, op: Op, ids: Sequence[str], count: int) -> Counters:
        """Redis work of `count` requests sent one after another (after one warm-up request)."""
        method, paths, bodies = request_of(op, ids)
        with httpx.Client(base_url=api.base_url, timeout=30.0) as http:

            def send(turn: int) -> None:
                body = bodies[turn % len(bodies)] if bodies else None
                headers = {"Content-Type": "application/json"} if body else {}
                response = http.request(method, paths[turn % len(paths)], content=body, headers=headers)
                if response.status_code != 200 or '"errors"' in response.text:
                    raise RuntimeError(
                        f"{op.label} on {api.name}: {response.status_code} {response.text[:300]}"
                    )

            send(0)
            before = counters(self.redis)
            for turn in range(1, count + 1):
                send(turn)
            return counters(self.redis).minus(before)

    # -- figures ----------------------------------------------------------------------------------

    def raw_rq(self, batch: int) -> dict[str, Any]:
        self.flush()
        load = os.getloadavg()[0]
        (raw,) = self.in_parallel(
            [(workload.raw_rq, (self.url, batch, self.options.duration, self.options.max_requests))],
            timeout=self.options.duration + 60,
        )
        latencies = sorted(raw["latencies_s"])
        return {
            "jobs": raw["jobs"],
            "calls": raw["calls"],
            "duration_s": round(raw["elapsed_s"], 3),
            "jobs_per_s": round(raw["jobs"] / raw["elapsed_s"], 1),
            "p50_ms": round(report.percentile(latencies, 0.5) * 1000, 3) if latencies else None,
            "p99_ms": round(report.percentile(latencies, 0.99) * 1000, 3) if latencies else None,
            "jobs_stored": int(self.redis.llen(QUEUE_KEY)),
            "loadavg_1m": load,
        }

    def figure_submit(self) -> dict[str, Any]:
        say("1. submit throughput")
        scenarios = self.scenarios("submit")
        raw: dict[str, list[dict[str, Any]]] = {"enqueue": [], "enqueue_many": []}
        for number in range(1, self.options.rounds + 1):
            for mode, batch in (("enqueue", 1), ("enqueue_many", BATCH)):
                row = self.raw_rq(batch)
                raw[mode].append(row)
                say(
                    f"  [raw {number}] Queue.{mode} ({batch}/call): {row['jobs_per_s']} jobs/s, "
                    f"p50 {row['p50_ms']} ms"
                )
        summaries = self.run_rounds(scenarios, (), "submit")
        self.flush()
        return {
            "raw_rq": {
                mode: {
                    "label": f"raw RQ Queue.{mode}" + (f" ({BATCH}/call)" if mode == "enqueue_many" else ""),
                    "jobs_per_request": BATCH if mode == "enqueue_many" else 1,
                    "jobs_per_s": spread([r["jobs_per_s"] for r in rows], 1),
                    "p50_ms": spread([r["p50_ms"] for r in rows], 3),
                    "p99_ms": spread([r["p99_ms"] for r in rows], 3),
                    "rounds": rows,
                }
                for mode, rows in raw.items()
            },
            "scenarios": summaries,
        }

    def prepare_finished(self, count: int) -> list[str]:
        self.flush()
        ids = self.fill(count)
        self.drain(evented=True)
        finished = int(self.redis.zcard("rq:finished:default"))
        if finished != count:
            raise RuntimeError(f"{finished} jobs finished, expected {count}")
        return ids

    def figure_read(self) -> tuple[dict[str, Any], list[str]]:
        say(f"2. read throughput ({self.options.read_jobs} finished jobs)")
        ids = self.prepare_finished(self.options.read_jobs)
        return self.run_rounds(self.scenarios("read"), ids, "read"), ids

    def figure_redis_per_op(self, ids: list[str]) -> dict[str, Any]:
        """Commands and round trips per operation (1-process APIs), reads first."""
        say(f"4. Redis commands and round trips per operation ({self.options.sequential_requests} requests)")
        count = self.options.sequential_requests
        batches = max(1, count // 10)  # calls of 100 jobs
        plan: list[tuple[str, str, Callable[[], Counters], int, int]] = []  # key, label, run, jobs, calls
        for api in self.stack.apis.values():
            if api.processes != 1:
                continue
            for op_name in ("rest_status", "gql_job", "rest_submit", "gql_submit", "gql_submit_batch"):
                op = OPS[op_name]
                if api.kind in op.kinds:
                    calls = batches if op.jobs_per_request > 1 else count
                    plan.append(
                        (
                            f"{op_name}|{api.name}",
                            f"{api.label} {op.label}",
                            lambda api=api, op=op, calls=calls: self.sequential(api, op, ids, calls),  # type: ignore[misc]
                            op.jobs_per_request,
                            calls,
                        )
                    )
        plan.append(("raw_enqueue", "raw RQ Queue.enqueue", lambda: self.raw_counts(1, count), 1, count))
        plan.append(
            (
                "raw_enqueue_many",
                f"raw RQ Queue.enqueue_many ({BATCH}/call)",
                lambda: self.raw_counts(BATCH, batches),
                BATCH,
                batches,
            )
        )
        rounds: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in plan}
        for _ in range(self.options.rounds):
            for key, _label, run, _jobs, calls in plan:
                delta = run()
                rounds[key].append(
                    {
                        "commands_per_call": delta.total_commands / calls,
                        "round_trips_per_call": delta.reads / calls,
                        "commands_by_name_per_call": {
                            k: round(v / calls, 2) for k, v in delta.commands.items()
                        },
                    }
                )
        out: dict[str, Any] = {}
        for key, label, _run, jobs, _calls in plan:
            rows = rounds[key]
            out[key] = {
                "label": label,
                "jobs_per_call": jobs,
                "commands_per_call": spread([r["commands_per_call"] for r in rows]),
                "round_trips_per_call": spread([r["round_trips_per_call"] for r in rows]),
                "commands_per_job": spread([r["commands_per_call"] / jobs for r in rows]),
                "round_trips_per_job": spread([r["round_trips_per_call"] / jobs for r in rows], 3),
                "commands_by_name_per_call": rows[-1]["commands_by_name_per_call"],
            }
            say(
                f"  {label:44} {out[key]['commands_per_call']['median']:>8} commands, "
                f"{out[key]['round_trips_per_call']['median']:>6} round trips per call"
            )
        return out

    def raw_counts(self, batch: int, calls: int) -> Counters:
        connection = redis.Redis.from_url(self.url)
        queue = Queue("default", connection=connection, serializer=JSONSerializer, default_timeout=900)
        try:
            workload.enqueue_one(queue)  # warm the connection
            before = counters(self.redis)
            for _ in range(calls):
                if batch == 1:
                    workload.enqueue_one(queue)
                else:
                    workload.enqueue_batch(queue, batch)
            return counters(self.redis).minus(before)
        finally:
            connection.close()

    def figure_growth(self) -> dict[str, Any]:
        sizes = self.options.sizes
        say(f"3. cost growth: jobs(first: 50) with {', '.join(f'{s:,}' for s in sizes)} jobs stored")
        api = self.stack.apis["ours-1p"]
        page = Scenario(OPS["gql_jobs"], api.name, 1)
        self.flush()
        stored = 0
        out: dict[str, Any] = {}
        for size in sizes:
            previous = stored
            began = time.monotonic()
            self.fill(size - stored)
            fill_s = time.monotonic() - began
            stored = int(self.redis.xlen(INDEX_ALL))
            if stored != size:
                raise RuntimeError(f"the index holds {stored} jobs, expected {size}")
            self.measure(page, (), min(1.0, self.options.duration))  # warm
            rows = [self.measure(page, (), self.options.duration) for _ in range(self.options.rounds)]
            per_page = self.sequential(api, OPS["gql_jobs"], (), self.options.sequential_requests)
            calls = self.options.sequential_requests
            out[str(size)] = {
                "jobs_stored": size,
                "fill_s": round(fill_s, 1),
                "fill_jobs_per_s": round((size - previous) / fill_s, 1) if fill_s else None,
                "used_memory_mb": round(int(self.redis.info("memory")["used_memory"]) / 2**20, 1),
                "p50_ms": spread([r["p50_ms"] for r in rows], 3),
                "p99_ms": spread([r["p99_ms"] for r in rows], 3),
                "requests_per_s": spread([r["rps"] for r in rows], 1),
                "commands_per_page": round(per_page.total_commands / calls, 2),
                "round_trips_per_page": round(per_page.reads / calls, 2),
                "commands_by_name_per_page": {k: round(v / calls, 2) for k, v in per_page.commands.items()},
                "rounds": rows,
            }
            say(
                f"  {size:>9,} jobs (filled in {fill_s:.0f} s): p50 {out[str(size)]['p50_ms']['median']} ms, "
                f"{out[str(size)]['commands_per_page']} commands and "
                f"{out[str(size)]['round_trips_per_page']} round trips per page"
            )
        self.flush()
        return out

    def figure_memory(self) -> dict[str, Any]:
        count = self.options.memory_jobs
        say(f"5. Redis memory per finished job ({count:,} jobs)")
        rows: dict[str, list[dict[str, Any]]] = {"ours": [], "lesson": []}
        breakdown: dict[str, dict[str, float]] = {}
        for number in range(1, self.options.rounds + 1):
            for who in ("ours", "lesson"):
                self.flush()
                time.sleep(0.2)
                before = counters(self.redis)
                ids = self.fill(count, lesson=who == "lesson")
                self.drain(evented=who == "ours")
                finished = int(self.redis.zcard("rq:finished:default"))
                after = counters(self.redis)
                per_job = (after.used_memory - before.used_memory) / count
                rows[who].append({"bytes_per_job": round(per_job, 1), "finished": finished})
                say(
                    f"  [memory {number}] {who:6} {per_job:8.0f} bytes per finished job ({finished} finished)"
                )
                if number == self.options.rounds:
                    breakdown[who] = self.memory_breakdown(ids)
        self.flush()
        return {
            who: {
                "bytes_per_job": spread([r["bytes_per_job"] for r in found], 1),
                "breakdown_bytes_per_job": breakdown.get(who, {}),
                "rounds": found,
            }
            for who, found in rows.items()
        }

    def memory_breakdown(self, ids: list[str]) -> dict[str, float]:
        """MEMORY USAGE of a sample of jobs' own keys, and every shared key shared out per job."""
        sample = ids[:: max(1, len(ids) // 200)]

        def usage(key: str) -> int:
            return int(self.redis.memory_usage(key, samples=0) or 0)

        parts = {
            "job hash": statistics.fmean(usage(f"rq:job:{i}") for i in sample),
            "result stream": statistics.fmean(usage(f"rq:results:{i}") for i in sample),
        }
        shared = [
            k.decode()
            for k in self.redis.scan_iter(count=1000)
            if not k.startswith((b"rq:job:", b"rq:results:"))
        ]
        for key in sorted(shared):
            share = usage(key) / len(ids)
            if share >= 5:  # index entries, registries; not the workers' keys
                parts[key.removeprefix("gql_jobs:")] = share
        return {k: round(v, 1) for k, v in parts.items()}

    def figure_drain(self) -> dict[str, Any]:
        count = self.options.drain_jobs
        say(f"6. worker drain rate ({count} no-op jobs per measurement)")
        variants = {
            "rq": "rq worker -S json",
            "gql": "gql-jobs worker",
            "rq-pool": "rq worker-pool -S json -n 2",
            "gql-pool": "gql-jobs worker --pool 2",
        }
        rows: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for number in range(1, self.options.rounds + 1):
            for kind, label in variants.items():
                self.flush()
                ids = self.fill(count, parts=1)
                load = os.getloadavg()[0]
                code, wall = self.stack.run_to_end(
                    f"worker-{kind}", worker_argv(self.url, kind), timeout=max(60.0, count / 5)
                )
                row = self.drain_rate(ids) | {"exit_code": code, "wall_s": round(wall, 2), "loadavg_1m": load}
                rows[kind].append(row)
                say(
                    f"  [drain {number}] {label:28} {row['jobs_per_s']:>7} jobs/s "
                    f"({row['finished']} finished)"
                )
        self.flush()
        return {
            kind: {
                "label": variants[kind],
                "jobs_per_s": spread([r["jobs_per_s"] for r in found], 1),
                "rounds": found,
            }
            for kind, found in rows.items()
        }

    def drain_rate(self, ids: list[str]) -> dict[str, Any]:
        """Finished jobs per second between the first start and the last end (RQ's own timestamps)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at", "status")
            found = pipe.execute()
        starts = [_rq_time(s) for s, _e, status in found if s and status == b"finished"]
        ends = [_rq_time(e) for _s, e, status in found if e and status == b"finished"]
        span = (max(ends) - min(starts)) if ends else 0.0
        return {
            "finished": len(ends),
            "span_s": round(span, 3),
            "jobs_per_s": round(len(ends) / span, 1) if span > 0 else None,
        }


def _rq_time(raw: bytes) -> float:
    return datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()


def summarize_load(scenario: Scenario, api: Api, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "label": f"{api.label} {scenario.op.label}",
        "api": api.name,
        "api_kind": api.kind,
        "processes": api.processes,
        "op": scenario.op.name,
        "concurrency": scenario.concurrency,
        "jobs_per_request": scenario.op.jobs_per_request,
        "jobs_per_s": spread([r["jobs_per_s"] for r in rows], 1),
        "requests_per_s": spread([r["rps"] for r in rows], 1),
        "p50_ms": spread([r["p50_ms"] for r in rows], 3),
        "p99_ms": spread([r["p99_ms"] for r in rows], 3),
        "api_cpu_pct": spread([r["api_cpu_pct"] for r in rows], 1),
        "redis_cpu_pct": spread([r["redis_cpu_pct"] for r in rows], 1),
        "loadavg_1m": spread([r["loadavg_1m"] for r in rows]),
        "failed": sum(r["failed"] for r in rows),
        "rounds": rows,
    }


def figure_subscriptions(options: Options, logdir: Path) -> dict[str, Any]:
    from bench import subscription_latency as sl  # noqa: PLC0415 (optional figure)

    say("7. subscription latency (bench/subscription_latency.py, events scenario)")
    scenario = next(s for s in sl.SCENARIOS if s.name == "events")
    jobs = 20 if options.quick else 100
    sub_options = sl.Options(jobs=jobs, warmup=5, in_flight=4, pause=0.05)
    found = sl.run_all([scenario], options.rounds, 60.0 * options.rounds, sub_options, logdir)
    return sl.summarize(scenario, found[scenario.name])


def machine(client: Client) -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadgen": client,
        "loadgen_version": _version(["wrk", "-v"]) if client == "wrk" else f"httpx {httpx.__version__}",
    }


def _version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def code_version() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty_files": git("status", "--porcelain").splitlines(),
    }


def run(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    loadavg_start = os.getloadavg()
    say(
        f"bench: {options.rounds} round(s) x {options.duration:g} s, load generator {options.loadgen}, "
        f"{os.cpu_count()} CPUs, load average {loadavg_start}"
    )
    figures: dict[str, Any] = {}
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="gql-jobs-bench-") as tmp,
        concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool,
    ):
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            kinds: list[tuple[ApiKind, int]] = [("ours", 1), ("lesson", 1)]
            if options.processes > 1:
                kinds += [("ours", options.processes), ("lesson", options.processes)]
            apis = [stack.start_api(kind, n) for kind, n in kinds]
            for api in apis:
                stack.wait_ready(api)
            redis_version = str(stack.client().info("server")["redis_version"])
            bench = Bench(stack, options, pool)
            figures["submit"] = bench.figure_submit()
            figures["read"], ids = bench.figure_read()
            figures["redis_per_op"] = bench.figure_redis_per_op(ids)
            figures["cost_growth"] = bench.figure_growth()
            figures["memory"] = bench.figure_memory()
            figures["drain"] = bench.figure_drain()
        except BaseException:
            stack.print_log_tails()
            raise
        finally:
            stack.stop_all()
        figures["subscriptions"] = figure_subscriptions(options, Path(tmp)) if options.subscriptions else None
    document = {
        "benchmark": "gql-jobs",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(options.loadgen) | {"redis_version": redis_version},
        "code": code_version(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "duration_s": round(time.monotonic() - started, 1),
        "figures": figures,
    }
    document["targets"] = [t.as_json() for t in report.targets(document)]
    document["other_ratios"] = report.other_ratios(document)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    document = run(options)
    report.print_report(document)
    report.write_json(document, options.output)
    say(f"wrote {options.output}")
    return 0
