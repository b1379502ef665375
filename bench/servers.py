"""Side by side in one run, against real servers: req/s and server CPU per request (issue #20).

    .venv/bin/python -m bench.servers [--jobs 1000] [--rounds 3] [--duration 5]
        [--concurrency 16 64] [--sizes 1000 100000] [--distinct 20000] [--output FILE] [--quick]

`bench.compare` calls the ASGI apps in-process; this runs each app in a server process of its own
on a free loopback port (one process, no access log) and loads it with wrk (`bench.loadgen`; the
httpx client where wrk is not installed, named in the JSON), against one private redis-server:

* gql-jobs: `python -m gql_jobs serve --workers 1 --no-access-log` (uvloop + httptools);
* the lesson's app (bench/lesson_app.py) on plain uvicorn (`--loop asyncio --http h11`) and on
  uvicorn[standard] (`--loop uvloop --http httptools`): both are reported;
* the naive Strawberry + RQ app (bench/naive_app.py) on uvicorn[standard];
* the bare-ASGI floor (`uvicorn --factory bench.floor_app:create`) on uvicorn[standard].

The store: `--distinct` finished jobs whose ids the "inline, new document" reads use (each such
request names a job never named in a document before, so the document is new, as a client that
inlines its values sends), then `--jobs` finished jobs on top (the pages read those). Every
scenario of `SCENARIOS` runs for `--duration` s at each concurrency in each of `--rounds` rounds;
a round runs the read scenarios, then the submit scenarios, each group in the opposite order of
the previous round's, so a drift in machine load spreads over all of them. Between rounds the jobs
the submit scenarios created are run to completion (unmeasured), so every round's pages read
finished jobs. Each measurement records ok req/s, p50/p99, failures, and the CPU seconds of the
server process (all its threads) and of redis-server over the measurement, per ok request, in
microseconds; the figures are the medians (min, max) over rounds, and `RATIOS` are ratios of those
medians (CPU: numerator / denominator, so 2.0 = twice the CPU per request; req/s likewise).

`--sizes 1000 100000`: afterwards, on an emptied Redis, the page of 50 (ours and the floor) with
each number of jobs stored, queued and not run (as `python -m bench` figure 3 fills them: two
processes of `JobService.submit_many`, about 10k jobs/s).

Output: a table on stdout, JSON in bench/results/<date>-servers.json (<date>-servers-quick.json
with --quick); `python -m bench.servers --report FILE` prints a saved run again (and recomputes
its ratios). A full run (18 scenarios, c16 and c64, 3 rounds of 5 s, --sizes) takes about 17
minutes, a third of it running the submitted jobs between rounds. Only ratios within one run mean
much: the machine is shared (the load average before and after is recorded).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bench import workload
from bench.compare import JOB_VARS, NAIVE_JOB, NAIVE_PAGE_50, NAIVE_SUBMIT, PAGE_50, PAGE_100_FULL
from bench.loadgen import Check, Client, LoadSpec, available_client, run_load
from bench.processes import http_ok, wait_until
from bench.run import (
    GQL_INPUT,
    INDEX_ALL,
    QUEUE_KEY,
    REST_BODY,
    RESULTS_DIR,
    SUBMIT_FIELDS,
    SUBMIT_ONE,
    code_version,
    gql,
    machine,
    spread,
)
from bench.stack import START_TIMEOUT, Proc, Stack, cpu_seconds
from bench.tasks import TASK

Group = Literal["read", "submit"]
#: Bodies of an "inline, new document" scenario per measurement (each used once while they last).
INLINE_BODIES = 20_000


# -- servers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerKind:
    name: str
    label: str
    target: str  # uvicorn's APP argument ("" for gql-jobs' own `serve`)
    ready_path: str
    loop: str = "uvloop"
    http: str = "httptools"
    factory: bool = False


SERVERS: dict[str, ServerKind] = {
    kind.name: kind
    for kind in (
        ServerKind("ours", "gql-jobs serve (uvloop, httptools)", "", "/readyz"),
        ServerKind(
            "lesson-plain", "lesson on uvicorn (asyncio, h11)", "bench.lesson_app:app", "/openapi.json",
            loop="asyncio", http="h11",
        ),
        ServerKind("lesson-standard", "lesson on uvicorn[standard]", "bench.lesson_app:app", "/openapi.json"),
        ServerKind("naive", "naive Strawberry on uvicorn[standard]", "bench.naive_app:app", "/openapi.json"),
        ServerKind("floor", "bare-ASGI floor on uvicorn[standard]", "bench.floor_app:create", "/page/1",
                   factory=True),
    )
}  # fmt: skip


@dataclass
class Server:
    kind: ServerKind
    port: int
    proc: Proc

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.process.pid


def start_server(stack: Stack, kind: ServerKind) -> Server:
    """Start it (not waiting for it): one process, no access log, the stack's environment."""
    if kind.name == "ours":
        api = stack.start_api("ours", 1)  # `gql-jobs serve --workers 1 --no-access-log`
        return Server(kind, api.port, api.proc)
    from bench.processes import free_port  # noqa: PLC0415

    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", kind.target, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--loop", kind.loop, "--http", kind.http, "--no-access-log", "--log-level", "warning"]
    argv += ["--factory"] if kind.factory else []
    return Server(kind, port, stack.start_process(f"server-{kind.name}", argv))


def wait_ready(server: Server) -> None:
    url = server.base_url + server.kind.ready_path
    proc = server.proc
    wait_until(server.kind.name, lambda: http_ok(url), proc.process, proc.log, START_TIMEOUT)


# -- scenarios ------------------------------------------------------------------------------------


@dataclass
class Pool:
    """Ids of finished jobs for the reads, and a cursor so inline documents are never sent twice."""

    ids: list[str]  # the `--jobs` ones (read by variables, by REST)
    distinct: list[str]  # the `--distinct` ones (named once each by inline documents)
    cursor: int = 0
    submit_cursor: int = 0
    wrapped: bool = False

    def next_distinct(self, count: int) -> list[str]:
        count = min(count, len(self.distinct))
        return [self.distinct[(self.cursor + i) % len(self.distinct)] for i in range(count)]

    def advance(self, used: int) -> None:
        self.cursor += used
        if self.cursor >= len(self.distinct):
            self.wrapped = True  # documents seen before: reported, the figure is then flattered
            self.cursor %= len(self.distinct)


Bodies = Callable[[Pool], tuple[str, ...]]


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    group: Group
    method: str
    paths: Callable[[Pool], tuple[str, ...]]
    bodies: Bodies = lambda pool: ()
    check: Check = "http"
    inline: Literal["", "job", "submit"] = ""  # a new document per request: which cursor advances


def _job_inline(pool: Pool) -> tuple[str, ...]:
    document = '{{ job(id: "{}") {{ id status result error {{ message }} }} }}'
    return tuple(gql(document.format(job_id)) for job_id in pool.next_distinct(INLINE_BODIES))


def _submit_inline(pool: Pool) -> tuple[str, ...]:
    def body(n: int) -> str:
        document = (
            f'mutation {{ submitJob(input: {{task: "{TASK}", payload: {{user_id: {n}, message: "hello"}}, '
            f'tags: ["api", "v1"]}}) {{ {SUBMIT_FIELDS} }} }}'
        )
        return gql(document)

    return tuple(body(pool.submit_cursor + i) for i in range(INLINE_BODIES))


def _one(text: str) -> Callable[[Pool], tuple[str, ...]]:
    return lambda pool: (text,)


def _status_paths(pool: Pool) -> tuple[str, ...]:
    return tuple(f"/job-status/{i}" for i in pool.ids)


GRAPHQL = _one("/graphql")


def _scenarios() -> list[Scenario]:
    submit_vars = gql(SUBMIT_ONE, {"input": GQL_INPUT})
    naive_submit = gql(NAIVE_SUBMIT, {"input": GQL_INPUT})
    found = [
        Scenario("ours: jobs(first: 50)", "ours", "read", "POST", GRAPHQL, _one(gql(PAGE_50)), "graphql"),
        Scenario(
            "ours: jobs(first: 100) payload result error", "ours", "read", "POST", GRAPHQL,
            _one(gql(PAGE_100_FULL)), "graphql",
        ),
        Scenario("naive: jobs(first: 50)", "naive", "read", "POST", GRAPHQL, _one(gql(NAIVE_PAGE_50)),
                 "graphql"),
        Scenario("floor: page of 50", "floor", "read", "GET", _one("/page/50")),
        Scenario(
            "ours: job(id) variables", "ours", "read", "POST", GRAPHQL,
            lambda pool: tuple(gql(JOB_VARS, {"id": i}) for i in pool.ids), "graphql",
        ),
        Scenario(
            "ours: job(id) inline, new document", "ours", "read", "POST", GRAPHQL, _job_inline, "graphql",
            inline="job",
        ),
        Scenario(
            "naive: job(id)", "naive", "read", "POST", GRAPHQL,
            lambda pool: tuple(gql(NAIVE_JOB, {"id": i}) for i in pool.ids), "graphql",
        ),
        Scenario("floor: read", "floor", "read", "GET", lambda pool: tuple(f"/job/{i}" for i in pool.ids)),
        Scenario("ours: REST status", "ours", "read", "GET", _status_paths),
        Scenario("lesson (plain): REST status", "lesson-plain", "read", "GET", _status_paths),
        Scenario("lesson (standard): REST status", "lesson-standard", "read", "GET", _status_paths),
        Scenario("ours: submitJob variables", "ours", "submit", "POST", GRAPHQL, _one(submit_vars),
                 "graphql"),
        Scenario(
            "ours: submitJob inline, new document", "ours", "submit", "POST", GRAPHQL, _submit_inline,
            "graphql", inline="submit",
        ),
        Scenario("naive: submitJob", "naive", "submit", "POST", GRAPHQL, _one(naive_submit), "graphql"),
        Scenario("floor: submit", "floor", "submit", "POST", _one("/submit"), _one(REST_BODY)),
        Scenario("ours: REST submit", "ours", "submit", "POST", _one("/submit-job"), _one(REST_BODY)),
        Scenario("lesson (plain): REST submit", "lesson-plain", "submit", "POST", _one("/submit-job"),
                 _one(REST_BODY)),
        Scenario("lesson (standard): REST submit", "lesson-standard", "submit", "POST", _one("/submit-job"),
                 _one(REST_BODY)),
    ]  # fmt: skip
    return found


SCENARIOS: dict[str, Scenario] = {s.name: s for s in _scenarios()}
#: --quick: one scenario per server and kind of work, enough to see the harness work.
QUICK = (
    "ours: jobs(first: 50)",
    "floor: page of 50",
    "ours: job(id) inline, new document",
    "naive: job(id)",
    "lesson (plain): REST status",
    "ours: submitJob variables",
    "ours: submitJob inline, new document",
    "lesson (standard): REST submit",
)

#: (label, numerator scenario, denominator scenario): bench.compare's RATIOS, the lesson on both
#: servers, and the naive app against ours.
RATIOS = (
    ("page of 50: naive / ours", "naive: jobs(first: 50)", "ours: jobs(first: 50)"),
    ("page of 50: ours / floor", "ours: jobs(first: 50)", "floor: page of 50"),
    ("job(id): inline / variables", "ours: job(id) inline, new document", "ours: job(id) variables"),
    ("job(id): ours / floor", "ours: job(id) variables", "floor: read"),
    ("job(id): naive / ours", "naive: job(id)", "ours: job(id) variables"),
    ("submitJob: inline / variables", "ours: submitJob inline, new document", "ours: submitJob variables"),
    ("submitJob: ours / floor", "ours: submitJob variables", "floor: submit"),
    ("submitJob: naive / ours", "naive: submitJob", "ours: submitJob variables"),
    ("submitJob: lesson REST standard / ours GraphQL", "lesson (standard): REST submit",
     "ours: submitJob variables"),
    ("submitJob: lesson REST plain / ours GraphQL", "lesson (plain): REST submit",
     "ours: submitJob variables"),
    ("REST submit: lesson standard / ours", "lesson (standard): REST submit", "ours: REST submit"),
    ("REST submit: lesson plain / ours", "lesson (plain): REST submit", "ours: REST submit"),
    ("REST status: lesson standard / ours", "lesson (standard): REST status", "ours: REST status"),
    ("REST status: lesson plain / ours", "lesson (plain): REST status", "ours: REST status"),
)  # fmt: skip


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    jobs: int
    distinct: int
    rounds: int
    duration: float
    warmup: float
    concurrencies: tuple[int, ...]
    sizes: tuple[int, ...]
    scenarios: tuple[str, ...]
    loadgen: Client
    quick: bool
    output: Path


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Run:
    stack: Stack
    options: Options
    pool_executor: concurrent.futures.Executor
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def redis_pid(self) -> int:
        assert self.stack.redis_proc is not None
        return self.stack.redis_proc.process.pid

    def in_parallel(self, func: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        futures = [self.pool_executor.submit(func, *a) for a in args]
        return [f.result(timeout=3600) for f in futures]

    def fill(self, count: int) -> list[str]:
        """`count` jobs through `JobService.submit_many`, by two processes at once; their ids."""
        shares = [share for share in (count - count // 2, count // 2) if share]
        found = self.in_parallel(workload.fill_service, [(self.stack.redis_url, s) for s in shares])
        return [job_id for ids in found for job_id in ids]

    def drain(self) -> float:
        """Run every queued job (two in-process burst workers); seconds it took."""
        began = time.monotonic()
        self.settle()
        self.in_parallel(workload.drain, [(self.stack.redis_url, True)] * 2)
        return time.monotonic() - began

    def settle(self, quiet: float = 0.5, limit: float = 30.0) -> None:
        """Wait until the queue stops growing (requests wrk abandoned have been written)."""
        client = self.stack.client()
        try:
            deadline = time.monotonic() + limit
            seen, still_since = int(client.llen(QUEUE_KEY)), time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - still_since < quiet:
                time.sleep(0.05)
                now = int(client.llen(QUEUE_KEY))
                if now != seen:
                    seen, still_since = now, time.monotonic()
        finally:
            client.close()

    def measure(self, scenario: Scenario, pool: Pool, concurrency: int, duration: float) -> dict[str, Any]:
        server = self.servers[scenario.server]
        bodies = scenario.bodies(pool)
        spec = LoadSpec(
            base_url=server.base_url,
            paths=scenario.paths(pool),
            method=scenario.method,
            bodies=bodies,
            concurrency=concurrency,
            duration=duration,
            check=scenario.check,
        )
        load = os.getloadavg()[0]
        server_before, redis_before = cpu_seconds(server.pid), cpu_seconds(self.redis_pid)
        result = run_load(spec, self.options.loadgen)
        server_cpu = cpu_seconds(server.pid) - server_before
        redis_cpu = cpu_seconds(self.redis_pid) - redis_before
        if scenario.inline == "job":
            pool.advance(result.requests + concurrency)
        elif scenario.inline == "submit":
            pool.submit_cursor += INLINE_BODIES
        ok = max(result.ok, 1)
        return {
            "rps": result.rps,
            "ok": result.ok,
            "failed": result.failed,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "server_cpu_us_per_request": round(server_cpu / ok * 1e6, 1),
            "redis_cpu_us_per_request": round(redis_cpu / ok * 1e6, 1),
            "server_cpu_s": round(server_cpu, 3),
            "duration_s": result.duration_s,
            "loadavg_1m": load,
            "distinct_bodies": len(bodies) if scenario.inline else None,
            "bodies_reused": bool(scenario.inline) and result.requests > len(bodies),
            "first_error": result.first_error,
        }

    def rounds(self, pool: Pool) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], list[float]]:
        """rows[c<N>][scenario] = one row per round; and the seconds each between-round drain took."""
        options = self.options
        chosen = [SCENARIOS[name] for name in options.scenarios]
        groups = [[s for s in chosen if s.group == g] for g in ("read", "submit")]
        rows: dict[str, dict[str, list[dict[str, Any]]]] = {
            f"c{c}": {s.name: [] for s in chosen} for c in options.concurrencies
        }
        if options.warmup:
            say(f"warm-up: {options.warmup:g} s per scenario at c{min(options.concurrencies)}")
            for scenario in chosen:
                self.measure(scenario, pool, min(options.concurrencies), options.warmup)
            self.drain()
        drains: list[float] = []
        for number in range(options.rounds):
            for group in groups:
                order = group if number % 2 == 0 else group[::-1]
                levels = options.concurrencies if number % 2 == 0 else options.concurrencies[::-1]
                for scenario in order:
                    for concurrency in levels:
                        row = self.measure(scenario, pool, concurrency, options.duration)
                        rows[f"c{concurrency}"][scenario.name].append(row)
                        say(
                            f"  [round {number + 1}] {scenario.name:46} c{concurrency:<3}"
                            f" {row['rps']:>8.1f} req/s"
                            f"  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms"
                            f"  server {row['server_cpu_us_per_request']:>7.0f} us/req"
                            f"  redis {row['redis_cpu_us_per_request']:>5.0f} us/req  failed {row['failed']}"
                            + (f"  ({row['first_error'][:100]})" if row["first_error"] else "")
                        )
            if number + 1 < options.rounds:
                drains.append(round(self.drain(), 1))
                say(f"  (ran the submitted jobs in {drains[-1]:.0f} s)")
        return rows, drains

    def sizes(self) -> dict[str, Any]:
        """The page of 50 (ours, the floor) with each of `--sizes` jobs stored, queued."""
        options = self.options
        client = self.stack.client()
        out: dict[str, Any] = {}
        pages = [SCENARIOS["ours: jobs(first: 50)"], SCENARIOS["floor: page of 50"]]
        empty = Pool([], [])
        try:
            client.flushall()
            stored = 0
            for size in options.sizes:
                began = time.monotonic()
                self.fill(size - stored)
                fill_s = time.monotonic() - began
                stored = int(client.xlen(INDEX_ALL))
                if stored != size:
                    raise RuntimeError(f"the index holds {stored} jobs, expected {size}")
                concurrency = min(options.concurrencies)
                rows: dict[str, list[dict[str, Any]]] = {s.name: [] for s in pages}
                for number in range(options.rounds):
                    for scenario in pages if number % 2 == 0 else pages[::-1]:
                        rows[scenario.name].append(
                            self.measure(scenario, empty, concurrency, options.duration)
                        )
                out[str(size)] = {
                    "jobs_stored": size,
                    "fill_s": round(fill_s, 1),
                    "concurrency": concurrency,
                    "scenarios": {name: summarize(r) for name, r in rows.items()},
                }
                for name, summary in out[str(size)]["scenarios"].items():
                    say(
                        f"  {size:>9,} jobs (filled in {fill_s:.0f} s) {name:24} "
                        f"{summary['rps']['median']:>8.1f} req/s  "
                        f"server {summary['server_cpu_us_per_request']['median']:>7.0f} us/req"
                    )
        finally:
            client.close()
        return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": spread([r["rps"] for r in rows], 1),
        "p50_ms": spread([r["p50_ms"] for r in rows], 3),
        "p99_ms": spread([r["p99_ms"] for r in rows], 3),
        "server_cpu_us_per_request": spread([r["server_cpu_us_per_request"] for r in rows], 1),
        "redis_cpu_us_per_request": spread([r["redis_cpu_us_per_request"] for r in rows], 1),
        "ok": sum(r["ok"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "bodies_reused": any(r["bodies_reused"] for r in rows),
        "rounds": rows,
    }


def ratios(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per concurrency, each ratio (numerator / denominator) of CPU per request and of req/s: of the
    medians (`cpu`, `rps`), and the median (min, max) of the ratios within each round (`cpu_paired`,
    `rps_paired`: both sides measured minutes apart at most, so less exposed to a drift in load)."""
    out: dict[str, dict[str, Any]] = {}
    for label, top, bottom in RATIOS:
        if top not in figures or bottom not in figures:
            continue
        a, b = figures[top], figures[bottom]
        entry: dict[str, Any] = {}
        for short, key in (("cpu", "server_cpu_us_per_request"), ("rps", "rps")):
            x, y = a[key]["median"], b[key]["median"]
            entry[short] = round(x / y, 2) if x and y else None
            rounds = zip(a["rounds"], b["rounds"], strict=False)
            pairs = [ra[key] / rb[key] for ra, rb in rounds if ra[key] and rb[key]]
            entry[f"{short}_paired"] = spread(pairs)
        out[label] = entry
    return out


def versions(redis_version: str) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found: dict[str, str | None] = {"redis-server": redis_version}
    for name in ("gql-jobs", "uvicorn", "uvloop", "httptools", "h11", "fastapi", "starlette"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    for name in ("strawberry-graphql", "graphql-core", "rq", "redis"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def run(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    loadavg_start = os.getloadavg()
    say(
        f"bench.servers: {len(options.scenarios)} scenarios"
        f" x c{'/c'.join(map(str, options.concurrencies))} x "
        f"{options.rounds} round(s) x {options.duration:g} s, load generator {options.loadgen}, "
        f"load average {loadavg_start}"
    )
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="gql-jobs-servers-") as tmp,
        concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as executor,
    ):
        stack = Stack(Path(tmp))
        bench = Run(stack, options, executor)
        try:
            stack.start_redis()
            needed = {SCENARIOS[name].server for name in options.scenarios}
            if options.sizes:
                needed |= {"ours", "floor"}
            for name, kind in SERVERS.items():
                if name in needed:
                    bench.servers[name] = start_server(stack, kind)
            began = time.monotonic()
            distinct = bench.fill(options.distinct)  # older: the pages read the `--jobs` ones below
            ids = bench.fill(options.jobs)
            bench.drain()
            say(f"stored {len(distinct) + len(ids):,} finished jobs in {time.monotonic() - began:.0f} s")
            for server in bench.servers.values():
                wait_ready(server)
            client = stack.client()
            redis_version = str(client.info("server")["redis_version"])
            pool = Pool(ids[: min(len(ids), 1000)], distinct)
            rows, drains = bench.rounds(pool)
            jobs_after = int(client.xlen(INDEX_ALL))
            client.close()
            sizes = bench.sizes() if options.sizes else None
        except BaseException:
            stack.print_log_tails()
            raise
        finally:
            stack.stop_all()
    figures = {level: {name: summarize(r) for name, r in by_name.items()} for level, by_name in rows.items()}
    return {
        "benchmark": "gql-jobs servers",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(options.loadgen),
        "versions": versions(redis_version),
        "code": code_version(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in options.__dict__.items()},
        "servers": {name: SERVERS[name].label for name in bench.servers},
        "loadavg_start": loadavg_start,
        "loadavg_end": os.getloadavg(),
        "duration_s": round(time.monotonic() - started, 1),
        "jobs_in_listing_after_rounds": jobs_after,
        "inline_ids_wrapped": pool.wrapped,
        "drains_between_rounds_s": drains,
        "figures": figures,
        "ratios": {level: ratios(by_name) for level, by_name in figures.items()},
        "sizes": sizes,
    }


def print_table(document: dict[str, Any]) -> None:
    for level, by_name in document["figures"].items():
        say(f"\n{level}: medians over {document['options']['rounds']} round(s) (min-max)")
        say(
            f"  {'scenario':46} {'req/s':>8} {'':15} {'server us/req':>13} {'':13}"
            f" {'redis us':>8} {'p99 ms':>8}"
        )
        for name, f in by_name.items():
            rps, cpu, rcpu = f["rps"], f["server_cpu_us_per_request"], f["redis_cpu_us_per_request"]
            say(
                f"  {name:46} {rps['median']:>8.1f} ({rps['min']:>6.0f}-{rps['max']:<6.0f}) "
                f"{cpu['median']:>13.0f} ({cpu['min']:>5.0f}-{cpu['max']:<5.0f}) {rcpu['median']:>8.0f} "
                f"{f['p99_ms']['median']:>8}" + (f"  (failed: {f['failed']})" if f["failed"] else "")
            )
        say(f"  {'ratio (numerator / denominator)':50} {'CPU':>6} {'req/s':>6}   within rounds: CPU, req/s")
        for label, ratio in document["ratios"][level].items():
            cpu, rps = ratio["cpu_paired"], ratio["rps_paired"]
            say(
                f"  {label:50} {ratio['cpu']!s:>6} {ratio['rps']!s:>6}   "
                f"{cpu['median']} ({cpu['min']}-{cpu['max']}), {rps['median']} ({rps['min']}-{rps['max']})"
            )
    if document["inline_ids_wrapped"]:
        say("  NOTE: the inline job(id) documents wrapped around --distinct: some were sent twice")
    say(f"\nload average before {document['loadavg_start']}, after {document['loadavg_end']}")


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=1000, help="finished jobs the pages and reads use")
    parser.add_argument("--distinct", type=int, help=f"finished jobs for inline job(id) ({INLINE_BODIES})")
    parser.add_argument("--rounds", type=int, help="rounds (3; --quick: 1)")
    parser.add_argument("--duration", type=float, help="seconds per measurement (5; --quick: 0.5)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="connections (16 64; --quick: 16)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="page of 50 with these jobs stored (e.g. 1000 100000)"
    )
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="only these (repeat)")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 round of 0.5 s, c16, a few scenarios"
    )
    parser.add_argument("--output", type=Path, help="JSON file (bench/results/<date>-servers.json)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    scenarios = tuple(args.scenario or (QUICK if quick else SCENARIOS))
    stem = f"{datetime.now(UTC):%Y-%m-%d}-servers" + ("-quick" if quick else "")
    return Options(
        jobs=args.jobs if not quick or args.jobs != 1000 else 200,
        distinct=args.distinct or (2000 if quick else INLINE_BODIES),
        rounds=args.rounds or (1 if quick else 3),
        duration=args.duration or (0.5 if quick else 5.0),
        warmup=0.0 if quick else 1.0,
        concurrencies=tuple(args.concurrency or ((16,) if quick else (16, 64))),
        sizes=tuple(sorted(args.sizes or ())),
        scenarios=scenarios,
        loadgen=available_client(args.loadgen),
        quick=quick,
        output=args.output or RESULTS_DIR / f"{stem}.json",
    )


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--report"]:  # reprint a saved run (its ratios recomputed from its rounds)
        path = Path(argv[1])
        document = json.loads(path.read_text())
        document["ratios"] = {level: ratios(by_name) for level, by_name in document["figures"].items()}
        print_table(document)
        path.write_text(json.dumps(document, indent=2) + "\n")
        return 0
    options = parse_options(argv)
    document = run(options)
    print_table(document)
    options.output.write_text(json.dumps(document, indent=2) + "\n")
    say(f"written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
