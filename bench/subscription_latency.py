"""Subscription latency: from a job's status change in the worker to a `jobUpdates` subscriber.

    .venv/bin/python -m bench.subscription_latency [--jobs 200] [--rounds 3] [--budget 240]

Each round starts the API (uvicorn) and one worker against a private redis-server, then follows
`--jobs` jobs over graphql-transport-ws, `--in-flight` at a time. A job's latency is the wall-clock
time its FINISHED message reached this client minus the worker's own `endedAt` (for STARTED:
minus `startedAt`); every process reads the same machine clock.

Scenarios (rounds are interleaved, so a drift in machine load spreads over all of them):

    events    `gql-jobs worker`, which publishes job events (the API also polls every 1.0 s)
    poll-1.0  a plain `rq worker -S json`: no status events, only the API's polling fallback (1.0 s)
    poll-0.2  the same with GQL_JOBS_POLL_INTERVAL=0.2

The jobs run `bench_pause`, declared below (the API and the workers import this module as a task
module): it sleeps and reports no progress. The built-in `sleep` reports progress at its last
step, and the read that event triggers may already see the job finished, so the plain-rq
scenarios would sometimes get FINISHED early by luck. With one worker and several jobs in
flight, a job usually waits queued behind others, so its subscription is in place before it
starts; a job already final in its subscription's first message has no measurable latency and is
counted as `missed`. STARTED figures are secondary: they exist only when a separate STARTED message
arrived (with polling, only when a poll fell inside the job's run, which biases them low), and
they include the API's work for the job that just finished and the next submission.

A plain `rq worker` forks a work horse that imports the task's module (here: gql_jobs and pydantic,
~150 ms) for every job, so the polling scenarios take about 0.3 s per job: with 200 jobs a round
of each takes about a minute, and `--budget` may leave them fewer rounds than `--rounds`.

Output: a table on stdout and JSON in bench/results/subscription-latency-<YYYY-MM-DD>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import redis
from pydantic import BaseModel, Field

import gql_jobs
from bench.processes import ROOT, STOP_TIMEOUT, free_port, http_ok, redis_server_binary, rq_cli, wait_until
from bench.report import percentile

RESULTS_DIR = ROOT / "bench" / "results"
TASK_MODULE = "bench.subscription_latency"
PAUSE_TASK = "bench_pause"
TARGET_P50_MS = 50.0
START_TIMEOUT = 30.0
JOB_TIMEOUT = 30.0

SUBMIT = (
    "mutation ($input: SubmitJobInput!) { submitJob(input: $input) { __typename "
    "... on SubmitJobSuccess { job { id } } ... on Error { message } } }"
)
FOLLOW = "subscription ($id: ID!) { jobUpdates(id: $id) { status startedAt endedAt } }"


# -- the task the jobs run (imported by the API and the workers) -----------------------------------


class PauseInput(BaseModel):
    """Input of `bench_pause`."""

    seconds: float = Field(default=0.05, ge=0, le=10)


@gql_jobs.task(PAUSE_TASK, input_model=PauseInput, description="Sleeps; reports no progress (benchmarks).")
def bench_pause(data: PauseInput) -> dict[str, float]:
    time.sleep(data.seconds)
    return {"paused": data.seconds}


# -- scenarios and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    evented_worker: bool
    poll_interval: float


SCENARIOS = (
    Scenario("events", "gql-jobs worker (events), poll 1.0 s", True, 1.0),
    Scenario("poll-1.0", "plain rq worker, polling fallback 1.0 s", False, 1.0),
    Scenario("poll-0.2", "plain rq worker, polling fallback 0.2 s", False, 0.2),
)


@dataclass
class JobTrace:
    """What the subscriber saw of one job."""

    first_status: str | None = None
    started_ms: float | None = None
    finished_ms: float | None = None
    error: str | None = None

    def observe(self, arrived: float, state: dict[str, Any]) -> None:
        status = state["status"]
        if self.first_status is None:  # the job's state when subscribing, not a change
            self.first_status = status
        elif status == "STARTED" and self.started_ms is None and state.get("startedAt"):
            self.started_ms = (arrived - timestamp(state["startedAt"])) * 1000
        elif status == "FINISHED" and state.get("endedAt"):
            self.finished_ms = (arrived - timestamp(state["endedAt"])) * 1000


@dataclass
class RoundResult:
    scenario: str
    round: int
    finished_ms: list[float] = field(default_factory=list)
    started_ms: list[float] = field(default_factory=list)
    missed: int = 0
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def add(self, trace: JobTrace) -> None:
        if trace.error:
            self.errors.append(trace.error)
        elif trace.finished_ms is not None:
            self.finished_ms.append(trace.finished_ms)
        else:
            self.missed += 1
        if trace.started_ms is not None:
            self.started_ms.append(trace.started_ms)

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "finished_ms": stats(self.finished_ms),
            "started_ms": stats(self.started_ms),
            "missed": self.missed,
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "duration_s": round(self.duration_s, 2),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
        }


def timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "min": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.50), 2),
        "p99": round(percentile(values, 0.99), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "mean": round(statistics.fmean(values), 2),
    }


# -- processes ------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(name: str, argv: list[str], logdir: Path, env: dict[str, str] | None = None) -> Iterator[Any]:
    """A subprocess (output in logdir/name.log), ended on leaving: SIGTERM, then SIGKILL."""
    with (logdir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def child_env(redis_url: str, poll_interval: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))}
    env.update(
        REDIS_URL=redis_url,
        GQL_JOBS_TASKS=TASK_MODULE,
        GQL_JOBS_POLL_INTERVAL=str(poll_interval),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


# -- the client -----------------------------------------------------------------------------------


class Session:
    """One graphql-transport-ws connection carrying one subscription per job."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inboxes: dict[str, asyncio.Queue[tuple[float, dict[str, Any]]]] = {}

    async def read_forever(self) -> None:
        async for raw in self.ws:
            arrived = time.time()  # before parsing: the latency ends when the bytes are here
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            inbox = self.inboxes.get(str(message.get("id")))
            if inbox is not None:
                inbox.put_nowait((arrived, message))

    async def follow(self, op_id: str, job_id: str) -> JobTrace:
        trace = JobTrace()
        inbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.inboxes[op_id] = inbox
        subscribe = {
            "id": op_id,
            "type": "subscribe",
            "payload": {"query": FOLLOW, "variables": {"id": job_id}},
        }
        await self.ws.send(json.dumps(subscribe))
        try:
            async with asyncio.timeout(JOB_TIMEOUT):
                while True:
                    arrived, message = await inbox.get()
                    payload: dict[str, Any] = message.get("payload") or {}
                    if message["type"] != "next":
                        if message["type"] == "error":
                            trace.error = f"{job_id}: {json.dumps(payload)[:200]}"
                        return trace
                    if payload.get("errors"):
                        trace.error = f"{job_id}: {json.dumps(payload['errors'])[:200]}"
                        return trace
                    trace.observe(arrived, payload["data"]["jobUpdates"])
        except TimeoutError:
            trace.error = f"{job_id}: no completion within {JOB_TIMEOUT:.0f} s"
            return trace
        finally:
            del self.inboxes[op_id]


async def submit(http: Any, pause: float) -> str:
    variables = {"input": {"task": PAUSE_TASK, "payload": {"seconds": pause}}}
    response = await http.post("/graphql", json={"query": SUBMIT, "variables": variables})
    result = response.json()["data"]["submitJob"]
    if result["__typename"] != "SubmitJobSuccess":
        raise RuntimeError(f"submitJob failed: {result}")
    return str(result["job"]["id"])


async def follow_jobs(port: int, jobs: int, in_flight: int, pause: float) -> list[JobTrace]:
    import httpx  # noqa: PLC0415 (see http_ok)
    import websockets  # noqa: PLC0415
    from websockets.typing import Subprotocol  # noqa: PLC0415

    slots = asyncio.Semaphore(in_flight)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as http,
        websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"expected connection_ack, got {ack}")
        session = Session(ws)
        reader = asyncio.create_task(session.read_forever())

        async def one(number: int) -> JobTrace:
            async with slots:
                return await session.follow(str(number), await submit(http, pause))

        try:
            return await asyncio.gather(*(one(n) for n in range(jobs)))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


# -- rounds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    jobs: int
    warmup: int
    in_flight: int
    pause: float


def run_round(scenario: Scenario, number: int, redis_url: str, options: Options, logdir: Path) -> RoundResult:
    """Start the API and a worker for the scenario, follow the jobs, stop both, empty Redis."""
    result = RoundResult(scenario.name, number, loadavg_start=os.getloadavg())
    began = time.monotonic()
    env = child_env(redis_url, scenario.poll_interval)
    port = free_port()
    api = [sys.executable, "-m", "uvicorn", "--factory", "gql_jobs.app:app_from_env", "--host", "127.0.0.1"]
    api += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    if scenario.evented_worker:
        worker = [sys.executable, "-m", "gql_jobs", "worker"]
    else:
        worker = [rq_cli(), "worker", "-S", "json", "-u", redis_url, "default"]
    client = redis.Redis.from_url(redis_url)
    tag = f"{scenario.name}-{number}"
    try:
        with (
            running(f"api-{tag}", api, logdir, env) as api_process,
            running(f"worker-{tag}", worker, logdir, env) as worker_process,
        ):
            wait_until(
                "the API",
                lambda: http_ok(f"http://127.0.0.1:{port}/readyz"),
                api_process,
                logdir,
                START_TIMEOUT,
            )
            wait_until(
                "the worker", lambda: client.scard("rq:workers") > 0, worker_process, logdir, START_TIMEOUT
            )
            if options.warmup:
                asyncio.run(follow_jobs(port, options.warmup, options.in_flight, options.pause))
            for trace in asyncio.run(follow_jobs(port, options.jobs, options.in_flight, options.pause)):
                result.add(trace)
    finally:
        client.flushall()
        client.close()
    result.duration_s = time.monotonic() - began
    result.loadavg_end = os.getloadavg()
    return result


@contextlib.contextmanager
def redis_server(logdir: Path) -> Iterator[str]:
    port = free_port()
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(logdir)]
    with running("redis", argv, logdir) as process:
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        try:
            wait_until("redis-server", lambda: bool(client.ping()), process, logdir, START_TIMEOUT)
        finally:
            client.close()
        yield url


def run_all(
    scenarios: Sequence[Scenario], rounds: int, budget: float, options: Options, logdir: Path
) -> dict[str, list[RoundResult]]:
    """Interleaved rounds: one of each scenario first, then more while they fit in the time budget.

    After the first, each round set runs the quickest scenarios first, and a scenario's round is
    skipped when its previous round's duration would take it past the budget.
    """
    deadline = time.monotonic() + budget
    results: dict[str, list[RoundResult]] = {s.name: [] for s in scenarios}
    with redis_server(logdir) as url:
        for number in range(1, rounds + 1):
            order = (
                scenarios if number == 1 else sorted(scenarios, key=lambda s: results[s.name][-1].duration_s)
            )
            for scenario in order:
                done = results[scenario.name]
                if done and time.monotonic() + done[-1].duration_s > deadline:
                    print(f"  {scenario.name} round {number}: skipped (time budget)", flush=True)
                    continue
                result = run_round(scenario, number, url, options, logdir)
                done.append(result)
                finished = stats(result.finished_ms)
                print(
                    f"  {scenario.name} round {number}: p50 {finished['p50']} ms, p99 {finished['p99']} ms, "
                    f"n {finished['n']}, missed {result.missed}, errors {len(result.errors)}, "
                    f"{result.duration_s:.1f} s",
                    flush=True,
                )
    return results


# -- report ---------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def summarize(scenario: Scenario, rounds: list[RoundResult]) -> dict[str, Any]:
    per_round = [r.as_json() for r in rounds]
    p50s = [r["finished_ms"]["p50"] for r in per_round if r["finished_ms"]["p50"] is not None]
    p99s = [r["finished_ms"]["p99"] for r in per_round if r["finished_ms"]["p99"] is not None]
    return {
        "description": scenario.description,
        "evented_worker": scenario.evented_worker,
        "poll_interval_s": scenario.poll_interval,
        "rounds_run": len(rounds),
        "finished_p50_ms_across_rounds": spread(p50s),
        "finished_p99_ms_across_rounds": spread(p99s),
        "finished_ms_pooled": stats([v for r in rounds for v in r.finished_ms]),
        "started_ms_pooled": stats([v for r in rounds for v in r.started_ms]),
        "missed": sum(r.missed for r in rounds),
        "errors": sum(len(r.errors) for r in rounds),
        "rounds": per_round,
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def spread_cell(values: dict[str, float | None]) -> str:
    return f"{fmt(values['median'])} [{fmt(values['min'])}-{fmt(values['max'])}]"


def print_table(summaries: dict[str, dict[str, Any]], rounds_asked: int) -> None:
    """FINISHED p50/p99: median of the rounds' values [min-max]; min/max/n pooled over all rounds."""
    columns = ("scenario", "rounds", "p50 ms", "p99 ms", "min", "max", "n", "STARTED p50/p99", "missed")
    rows = [columns]
    for name, s in summaries.items():
        pooled, started = s["finished_ms_pooled"], s["started_ms_pooled"]
        rows.append(
            (
                name,
                f"{s['rounds_run']}/{rounds_asked}",
                spread_cell(s["finished_p50_ms_across_rounds"]),
                spread_cell(s["finished_p99_ms_across_rounds"]),
                fmt(pooled["min"]),
                fmt(pooled["max"]),
                str(pooled["n"]),
                f"{fmt(started['p50'])}/{fmt(started['p99'])}",
                str(s["missed"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    print("\nFINISHED latency, worker's endedAt -> subscriber has the message (ms).")
    print("p50/p99: median over rounds [min-max]; min/max/n and STARTED: all rounds pooled.")
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs measured per round (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per scenario, time allowing (3)")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for all rounds (240)")
    parser.add_argument("--in-flight", type=int, default=4, help="jobs followed at once (4)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds each job sleeps (0.05)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured jobs first in each round (5)")
    parser.add_argument(
        "--scenario", action="append", choices=[s.name for s in SCENARIOS], help="run only these (repeatable)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON file (default bench/results/subscription-latency-DATE.json)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    options = Options(jobs=args.jobs, warmup=args.warmup, in_flight=args.in_flight, pause=args.pause)
    output = args.output or RESULTS_DIR / f"subscription-latency-{date.today().isoformat()}.json"
    loadavg_start = os.getloadavg()
    started = time.monotonic()
    print(f"subscription latency: {args.jobs} jobs x {args.rounds} rounds, load {loadavg_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gql-jobs-bench-") as tmp:
        try:
            results = run_all(scenarios, args.rounds, args.budget, options, Path(tmp))
        except Exception:
            logs = sorted(Path(tmp).glob("*.log"))
            for log in logs:
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            raise
    summaries = {s.name: summarize(s, results[s.name]) for s in scenarios}
    target: dict[str, Any] = {"events_p50_under_ms": TARGET_P50_MS}
    if "events" in summaries:
        p50 = summaries["events"]["finished_p50_ms_across_rounds"]["median"]
        target["met"] = p50 is not None and p50 < TARGET_P50_MS
    loadavg_end = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "subscription-latency",
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "options": {**vars(options), "rounds_asked": args.rounds, "budget_s": args.budget},
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_end,
        "duration_s": round(time.monotonic() - started, 1),
        "target": target,
        "scenarios": summaries,
    }
    print_table(summaries, args.rounds)
    print(f"\nload average {loadavg_start} -> {loadavg_end}; {report['duration_s']} s")
    if "met" in target:
        print(f"target events p50 < {TARGET_P50_MS:.0f} ms: {'met' if target['met'] else 'NOT met'}")
    write_json(report, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
