"""Load and faults: 32 idempotent submitters on both transports, a worker SIGKILLed, Redis restarted.

    .venv/bin/python -m bench.load_and_fault [--duration 60] [--concurrency 32] [--redis-restart crash]

The trust issue's run, quoted: "Submitters at concurrency 32 for 60 s through both transports with
idempotency keys and client retries, while one worker is SIGKILLed and restarted and Redis (AOF) is
restarted once; then drain. Report: accepted, finished, failed, lost (accepted but absent) and
duplicated (one idempotency key, two jobs). Target: lost = 0, duplicated = 0."

Everything runs on loopback and is started here: a private redis-server (AOF, `appendfsync
everysec`, no RDB) in a temporary directory, the API under uvicorn and two `gql-jobs worker`
processes (heartbeat 1 s, grace 2 s, sweep 2 s, so a killed worker's job is failed within seconds).

Load: `--concurrency` asyncio submitters, half `POST /submit-job` with an `Idempotency-Key` header,
half the `submitJob` mutation with `idempotencyKey`, each submitting `echo` jobs one after another
for `--duration` s. The payload carries the idempotency key (`{"key": ..., "n": ...}`): `sleep`'s
input model drops unknown fields, `echo` stores its payload as given, so every job in Redis names
the key it was submitted under. A submission is retried with the same key and body on connection
errors, timeouts, HTTP 5xx/429, a `ServiceUnavailableError`/`RateLimitedError` member or a masked
"Unexpected error." (backoff 0.1 s doubling to 2 s, jittered) until accepted or until the end of the
load + 30 s. A fraction of accepted keys (`--resubmit`, 10 %) is sent once more, as a client does
whose response was lost, and must get the same job back.

Faults (by default at 20/60 and 35/60 of the duration: T+20 s and T+35 s for 60 s):

    worker  SIGSTOP one worker, SIGKILL its children (work horse, scheduler) and itself (a crashed
            container loses all of them), then start a replacement. The job it was running must
            end FAILED (abandoned), not vanish.
    redis   `crash`: SIGKILL redis-server; `graceful`: SIGTERM (flushes and fsyncs the AOF). Then
            start it again on the same port and directory, which replays the AOF.

With `appendfsync everysec` Redis fsyncs the AOF once a second, so a *machine* crash (power loss,
kernel panic) may lose up to ~1 s (at worst ~2 s) of acknowledged writes. SIGKILL of the process
is not such a crash: Redis write()s the AOF before it replies, and the kernel keeps those pages,
so a process crash should lose nothing acknowledged. Any lost job is listed with its acceptance
time relative to the crash so the two cases can be told apart.

Then drain (bounded by `--drain-timeout`) until no job is queued, started, scheduled or deferred
(the `queues` query), and check in Redis:

    accepted    submissions answered with a job id (REST / GraphQL), one per idempotency key
    finished / failed / other   status of each accepted job (other: still queued, started, ...)
    lost        accepted, but the job's hash is gone
    duplicated  idempotency keys standing for two or more jobs: two different ids answered, or
                more than one job in Redis whose payload carries the key (all `rq:job:*` scanned)
    never accepted  keys abandoned by their submitter (retries ran out or a non-retryable answer)

Output: a table on stdout and JSON in bench/results/load-and-fault-<YYYY-MM-DD>.json (with a
`-<restart>-<duration>s` suffix when not run with the defaults). Exit status 1 when the target
(lost = 0, duplicated = 0, never accepted = 0) is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from base64 import b64decode
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import httpx
import redis

from bench.processes import (
    ROOT,
    STOP_TIMEOUT,
    end_family,
    free_port,
    http_ok,
    kill_family,
    redis_server_binary,
    wait_until,
)
from bench.report import percentile

RESULTS_DIR = ROOT / "bench" / "results"
TASK = "echo"
QUEUE = "default"
WORKERS = 2
START_TIMEOUT = 30.0
RETRY_TAIL = 30.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
DEFAULT_DURATION = 60.0
DEFAULT_CONCURRENCY = 32
DEFAULT_RESTART = "crash"
#: Seconds of acknowledged writes `appendfsync everysec` may lose in a machine crash (2 at worst).
EVERYSEC_WINDOW = 1.0
CHILD_ENV = {
    "GQL_JOBS_WORKER_HEARTBEAT_INTERVAL": "1",
    "GQL_JOBS_WORKER_HEARTBEAT_GRACE": "2",
    "GQL_JOBS_WORKER_MAINTENANCE_INTERVAL": "2",
}
PENDING = ("QUEUED", "STARTED", "SCHEDULED", "DEFERRED")
INTERMEDIATE = f"rq:queue:{QUEUE}:intermediate"
#: Where RQ may hold a job id, to tell where a job that is not final sits.
PLACES = {
    "queue": ("list", f"rq:queue:{QUEUE}"),
    "intermediate": ("list", INTERMEDIATE),
    "started_registry": ("zset", f"rq:wip:{QUEUE}"),
    "failed_registry": ("zset", f"rq:failed:{QUEUE}"),
    "finished_registry": ("zset", f"rq:finished:{QUEUE}"),
}

SUBMIT = (
    "mutation ($input: SubmitJobInput!) { submitJob(input: $input) { __typename "
    "... on SubmitJobSuccess { deduplicated job { id } } ... on Error { message } } }"
)
QUEUES = "{ queues { name counts { status count } } }"
VICTIM_SECONDS = 5.0
RETRYABLE_MEMBERS = frozenset({"ServiceUnavailableError", "RateLimitedError"})

Transport = Literal["rest", "graphql"]


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    expected_exit: bool = False

    def wait_until(self, what: str, condition: Callable[[], bool]) -> None:
        wait_until(what, condition, self.process, self.log.name, START_TIMEOUT)


class Cluster:
    """redis-server, the API and the workers; every process started here is ended by `stop_all`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.datadir = workdir / "redis"
        self.datadir.mkdir()
        self.redis_port = free_port()
        self.api_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis: Child | None = None
        self.api: Child | None = None
        self.workers: list[Child] = []
        self.retired: list[Child] = []
        self.unexpected_exits: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._count = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=1.0, socket_timeout=10.0)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))}
        env.update(CHILD_ENV, REDIS_URL=self.redis_url)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None) -> Child:
        self._count += 1
        log = (self.workdir / f"{self._count:02d}-{name}.log").open("ab")
        # cwd: the temporary directory, so no `.env` of the checkout changes the settings.
        process = subprocess.Popen(
            argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return Child(name, process, log)

    # redis

    def start_redis(self) -> float:
        """Start redis-server (replaying the AOF if there is one); returns seconds until it answered."""
        argv = [redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        argv += ["--dir", str(self.datadir)]
        began = time.monotonic()
        self.redis = self._spawn("redis", argv, None)
        client = redis.Redis(port=self.redis_port, socket_connect_timeout=0.2, socket_timeout=1.0)
        try:
            self.redis.wait_until("redis-server", lambda: bool(client.ping()))
        finally:
            client.close()
        return time.monotonic() - began

    def stop_redis(self, graceful: bool) -> None:
        assert self.redis is not None
        self.redis.expected_exit = True
        if graceful:
            self.redis.process.terminate()
        else:
            self.redis.process.kill()
        self.redis.process.wait(timeout=60)
        self.retired.append(self.redis)
        self.redis = None

    # api and workers

    def start_api(self) -> None:
        argv = [sys.executable, "-m", "uvicorn", "--factory", "gql_jobs.app:app_from_env"]
        argv += ["--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"]
        argv += ["--log-level", "warning", "--no-access-log"]
        self.api = self._spawn("api", argv, self.env())
        self.api.wait_until("the API", lambda: http_ok(f"{self.base_url}/readyz"))

    def start_worker(self) -> Child:
        worker = self._spawn("worker", [sys.executable, "-m", "gql_jobs", "worker"], self.env())
        with self.lock:
            self.workers.append(worker)
        return worker

    def kill_worker(self, victim: Child) -> int:
        with self.lock:
            victim.expected_exit = True
            self.workers.remove(victim)
            self.retired.append(victim)
        killed = kill_family(victim.process.pid)
        victim.process.wait(timeout=STOP_TIMEOUT)
        return killed

    def supervise(self, started: float) -> None:
        """Restart any worker or API that exited by itself, noting it (compose would not restart)."""
        with self.lock:
            dead = [w for w in self.workers if w.process.poll() is not None and not w.expected_exit]
            for worker in dead:
                self.workers.remove(worker)
                self.retired.append(worker)
        for worker in dead:
            self._note_exit(worker, started)
            self.start_worker()
        if self.api is not None and self.api.process.poll() is not None:
            self._note_exit(self.api, started)
            self.retired.append(self.api)
            self.start_api()

    def _note_exit(self, child: Child, started: float) -> None:
        self.unexpected_exits.append(
            {
                "process": child.name,
                "pid": child.process.pid,
                "returncode": child.process.returncode,
                "at_s": round(time.monotonic() - started, 2),
                "last_error": last_error(Path(child.log.name)),
            }
        )

    def stop_all(self) -> None:
        with self.lock:
            children = [
                *self.workers,
                *([self.api] if self.api else []),
                *([self.redis] if self.redis else []),
            ]
            self.workers = []
        for child in children:  # workers, then the API, then Redis
            child.expected_exit = True
            with contextlib.suppress(Exception):
                end_family(child.process)
        for child in [*children, *self.retired]:
            with contextlib.suppress(Exception):
                if child.process.poll() is None:
                    end_family(child.process)
            child.log.close()
        self.api = self.redis = None

    def logs(self) -> list[Path]:
        return sorted(self.workdir.glob("*.log"))


def last_error(log: Path) -> str | None:
    """The last exception named in a process's log (RQ logs tracebacks as JSON strings)."""
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace").replace("\\n", "\n")
        found = re.findall(r"([A-Za-z_.]*(?:Error|Exception)): ([^\"\n]{0,160})", text)
        if found:
            return f"{found[-1][0]}: {found[-1][1]}"
    return None


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Submission:
    """One idempotency key's life on the client."""

    key: str
    transport: Transport
    attempts: int = 0
    job_id: str | None = None
    accepted_at: float | None = None  # wall clock, comparable with the fault times
    latency_s: float | None = None  # first send -> accepted
    deduplicated: bool = False  # GraphQL says the key returned an earlier job
    gave_up: str | None = None
    resubmitted_job_id: str | None = None


@dataclass
class Load:
    end: float  # monotonic: no new key after this
    hard_end: float  # monotonic: no retry after this
    resubmit: float
    client_timeout: float
    rng: random.Random
    submissions: list[Submission] = field(default_factory=list)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    resubmits: int = 0


@dataclass(frozen=True)
class Answer:
    job_id: str | None = None
    deduplicated: bool = False
    retry: str | None = None  # why to try again
    refused: str | None = None  # why not to


async def post_rest(http: httpx.AsyncClient, key: str, payload: dict[str, Any]) -> Answer:
    response = await http.post(
        "/submit-job", json={"task": TASK, "payload": payload}, headers={"Idempotency-Key": key}
    )
    if response.status_code == 200:
        return Answer(job_id=str(response.json()["job_id"]))
    if response.status_code >= 500 or response.status_code == 429:
        return Answer(retry=f"rest http {response.status_code}")
    return Answer(refused=f"rest http {response.status_code}: {response.text[:200]}")


async def post_graphql(http: httpx.AsyncClient, key: str, payload: dict[str, Any]) -> Answer:
    variables = {"input": {"task": TASK, "payload": payload, "idempotencyKey": key}}
    response = await http.post("/graphql", json={"query": SUBMIT, "variables": variables})
    if response.status_code >= 500:
        return Answer(retry=f"graphql http {response.status_code}")
    body = response.json()
    errors = body.get("errors") or []
    if errors:
        codes = {str((e.get("extensions") or {}).get("code")) for e in errors}
        messages = {str(e.get("message")) for e in errors}
        if "SERVICE_UNAVAILABLE" in codes:
            return Answer(retry="graphql SERVICE_UNAVAILABLE error")
        if "Unexpected error." in messages:
            return Answer(retry="graphql masked unexpected error")
        return Answer(refused=f"graphql errors: {json.dumps(errors)[:200]}")
    result = body["data"]["submitJob"]
    kind = result["__typename"]
    if kind == "SubmitJobSuccess":
        return Answer(job_id=str(result["job"]["id"]), deduplicated=bool(result["deduplicated"]))
    if kind in RETRYABLE_MEMBERS:
        return Answer(retry=f"graphql {kind}")
    return Answer(refused=f"graphql {kind}: {result.get('message')}")


async def attempt(http: httpx.AsyncClient, sub: Submission, payload: dict[str, Any]) -> Answer:
    post = post_rest if sub.transport == "rest" else post_graphql
    try:
        return await post(http, sub.key, payload)
    except httpx.TimeoutException as exc:
        return Answer(retry=f"{sub.transport} {type(exc).__name__}")
    except httpx.TransportError as exc:
        return Answer(retry=f"{sub.transport} {type(exc).__name__}")


async def submit_until_accepted(
    http: httpx.AsyncClient, sub: Submission, payload: dict[str, Any], load: Load
) -> Answer:
    """Send until accepted, refused, or out of time; the same key and body every time."""
    delay = BACKOFF_FIRST
    while True:
        sub.attempts += 1
        answer = await attempt(http, sub, payload)
        if answer.retry is None:
            return answer
        load.retry_reasons[answer.retry] += 1
        if time.monotonic() + delay > load.hard_end:
            return Answer(refused=f"out of time after {sub.attempts} attempts (last: {answer.retry})")
        await asyncio.sleep(delay * load.rng.uniform(0.5, 1.0))
        delay = min(BACKOFF_MAX, delay * 2)


async def submitter(number: int, http: httpx.AsyncClient, load: Load) -> None:
    transport: Transport = "rest" if number % 2 == 0 else "graphql"
    sequence = 0
    while time.monotonic() < load.end:
        sequence += 1
        sub = Submission(key=f"lf-{uuid.uuid4()}", transport=transport)
        payload = {"key": sub.key, "n": sequence, "submitter": number}
        load.submissions.append(sub)
        began = time.monotonic()
        answer = await submit_until_accepted(http, sub, payload, load)
        if answer.job_id is None:
            sub.gave_up = answer.refused
            continue
        sub.job_id, sub.deduplicated = answer.job_id, answer.deduplicated
        sub.accepted_at, sub.latency_s = time.time(), time.monotonic() - began
        if load.rng.random() < load.resubmit:  # a client whose response was lost sends again
            load.resubmits += 1
            again = await submit_until_accepted(http, Submission(sub.key, transport), payload, load)
            sub.resubmitted_job_id = again.job_id


# -- faults ---------------------------------------------------------------------------------------


@dataclass
class Faults:
    started_wall: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    killed_job_id: str | None = None
    crash_wall: float | None = None

    def note(self, what: str, **details: Any) -> None:
        at = time.time()
        self.events.append({"event": what, "at_s": round(at - self.started_wall, 2), **details})
        print(f"  T+{at - self.started_wall:5.1f} s  {what} {details or ''}", flush=True)


def submit_victim(cluster: Cluster) -> str | None:
    """A 5 s `sleep` job at the front of the queue (GraphQL, with a key), for the worker kill."""
    variables = {
        "input": {
            "task": "sleep",
            "payload": {"seconds": VICTIM_SECONDS, "steps": 5},
            "atFront": True,
            "idempotencyKey": f"victim-{uuid.uuid4()}",
        }
    }
    with contextlib.suppress(httpx.HTTPError, KeyError, TypeError, ValueError):
        response = httpx.post(
            f"{cluster.base_url}/graphql", json={"query": SUBMIT, "variables": variables}, timeout=10.0
        )
        return str(response.json()["data"]["submitJob"]["job"]["id"])
    return None


def running_on(client: redis.Redis, job_id: str, workers: Sequence[Child]) -> Child | None:
    """The worker running the job, once the job is STARTED."""
    fields: list[bytes | None] = client.hmget(f"rq:job:{job_id}", ["status", "worker_name"])  # type: ignore[assignment]
    status, name = fields
    if status != b"started" or not name:
        return None
    pid = client.hget(f"rq:worker:{name.decode()}", "pid")
    for worker in workers:
        if pid is not None and int(pid) == worker.process.pid:
            return worker
    return None


def kill_a_worker(cluster: Cluster, faults: Faults) -> None:
    """SIGKILL the worker running a 5 s job (and its work horse), then start a new one.

    The job is submitted at the front of the queue and the kill waits (up to 20 s) until it runs;
    failing that, the first worker is killed, busy or not."""
    job_id = submit_victim(cluster)
    client = cluster.client()
    victim: Child | None = None
    try:
        deadline = time.monotonic() + 20.0
        while job_id is not None and victim is None and time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                victim = running_on(client, job_id, list(cluster.workers))
            time.sleep(0.02)
    finally:
        client.close()
    mid_job = victim is not None
    victim = victim or cluster.workers[0]
    killed = cluster.kill_worker(victim)
    faults.killed_job_id = job_id if mid_job else None
    faults.note(
        "worker SIGKILLed", pid=victim.process.pid, processes=killed, running_job=job_id, mid_job=mid_job
    )
    replacement = cluster.start_worker()
    faults.note("replacement worker started", pid=replacement.process.pid)


def restart_redis(cluster: Cluster, faults: Faults, mode: str) -> None:
    persistence: dict[str, Any] = {}
    client = cluster.client()
    with contextlib.suppress(redis.RedisError):
        info = client.info("persistence")
        wanted = ("aof_enabled", "aof_rewrite_in_progress", "aof_delayed_fsync", "aof_last_write_status")
        persistence = {k: info.get(k) for k in wanted}
        persistence["dbsize"] = client.dbsize()
    client.close()
    graceful = mode == "graceful"
    if not graceful:
        faults.crash_wall = time.time()
    faults.note(f"redis {'SIGTERM' if graceful else 'SIGKILL'}", before=persistence)
    cluster.stop_redis(graceful)
    faults.note("redis down")
    took = cluster.start_redis()
    client = cluster.client()
    try:
        size = client.dbsize()
    finally:
        client.close()
    faults.note("redis up (AOF replayed)", start_s=round(took, 2), dbsize=size)


async def at(moment: float, action: Callable[[], None]) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))
    await asyncio.to_thread(action)


async def supervise(cluster: Cluster, started: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.to_thread(cluster.supervise, started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


# -- drain and verification -------------------------------------------------------------------------


async def pending_jobs(http: httpx.AsyncClient, cluster: Cluster) -> int | None:
    """Jobs not yet final: the `queues` query's counts, plus RQ's intermediate queue (jobs a
    worker popped but had not yet marked started), which that query does not show. None when
    it cannot tell."""
    try:
        response = await http.post("/graphql", json={"query": QUEUES})
        data = response.json().get("data")
    except (httpx.HTTPError, ValueError):
        return None
    if not data:
        return None
    limbo = await asyncio.to_thread(intermediate_jobs, cluster)
    if limbo is None:
        return None
    counts = (int(c["count"]) for q in data["queues"] for c in q["counts"] if c["status"] in PENDING)
    return sum(counts) + len(limbo)


def intermediate_jobs(cluster: Cluster) -> list[str] | None:
    client = cluster.client()
    try:
        ids: list[bytes] = client.lrange(INTERMEDIATE, 0, -1)  # type: ignore[assignment]
        return [i.decode() for i in ids]
    except redis.RedisError:
        return None
    finally:
        client.close()


async def drain(http: httpx.AsyncClient, cluster: Cluster, limit: float) -> tuple[bool, float, int | None]:
    """Wait until nothing is pending twice in a row (0.5 s apart). Returns (drained, s, last count)."""
    began = time.monotonic()
    zeros, last = 0, None
    while time.monotonic() - began < limit:
        last = await pending_jobs(http, cluster)
        zeros = zeros + 1 if last == 0 else 0
        if zeros >= 2:
            return True, time.monotonic() - began, 0
        await asyncio.sleep(0.5)
    return False, time.monotonic() - began, last


@dataclass
class Verdict:
    statuses: Counter[str]
    lost: list[str]
    executions: Counter[int]  # results stored per accepted job -> how many jobs
    jobs_by_key: dict[str, set[str]]
    scanned: int
    failure_reasons: Counter[str]
    unfinished: list[dict[str, Any]]  # accepted jobs neither finished nor failed, where they sit
    repeated: list[dict[str, Any]]  # accepted jobs with more than one result: their results


def check_jobs(
    client: redis.Redis, job_ids: Sequence[str]
) -> tuple[dict[str, str], list[str], dict[str, int]]:
    """Status of each job (from its hash), the ids whose hash is gone, and results per job."""
    statuses: dict[str, str] = {}
    executions: dict[str, int] = {}
    lost = []
    for start in range(0, len(job_ids), 1000):
        chunk = job_ids[start : start + 1000]
        with client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(f"rq:job:{job_id}", ["status", "data"])
                pipe.xlen(f"rq:results:{job_id}")
            replies = pipe.execute()
        for i, job_id in enumerate(chunk):
            status, data = replies[2 * i]
            if data is None:
                lost.append(job_id)
                continue
            statuses[job_id] = status.decode() if status else "?"
            executions[job_id] = int(replies[2 * i + 1])
    return statuses, lost, executions


RESULT_TYPES = {b"1": "successful", b"2": "failed", b"3": "stopped", b"4": "retried", b"5": "max_retries"}


def exc_line(raw: bytes | None) -> str | None:
    if not raw:
        return None
    text = zlib.decompress(b64decode(raw)).decode(errors="replace").strip()
    return text.splitlines()[-1][:160] if text else "?"


def results_of(client: redis.Redis, job_id: str) -> dict[str, Any]:
    """Every result RQ stored for a job (type, time, error line), with the job's worker and times."""
    entries: list[Any] = client.xrange(f"rq:results:{job_id}")  # type: ignore[assignment]
    job: list[bytes | None] = client.hmget(  # type: ignore[assignment]
        f"rq:job:{job_id}", ["status", "worker_name", "started_at", "ended_at"]
    )
    return {
        "job_id": job_id,
        "job": [v.decode() if v else None for v in job],
        "results": [
            {
                "type": RESULT_TYPES.get(fields.get(b"type"), "?"),
                "created_at": (fields.get(b"created_at") or b"").decode(),
                "error": exc_line(fields.get(b"exc_string")),
            }
            for _, fields in entries
        ],
    }


def failure_reason(client: redis.Redis, job_id: str) -> str:
    """The last line of a job's latest failure, from RQ's results stream."""
    entries: list[Any] = client.xrevrange(f"rq:results:{job_id}", "+", "-", count=1)  # type: ignore[assignment]
    if not entries:
        return "no result stored"
    fields = entries[0][1]
    return (
        exc_line(fields.get(b"exc_string")) or f"latest result {RESULT_TYPES.get(fields.get(b'type'), '?')}"
    )


def where(client: redis.Redis, job_id: str) -> dict[str, Any]:
    """A job that is not final: its status and which RQ lists and registries hold it."""
    found: dict[str, Any] = {"job_id": job_id, "status": None, "in": []}
    status = client.hget(f"rq:job:{job_id}", "status")
    found["status"] = status.decode() if isinstance(status, bytes) else None
    for place, (kind, key) in PLACES.items():
        held = (
            client.lpos(key, job_id) is not None if kind == "list" else client.zscore(key, job_id) is not None
        )
        if held:
            found["in"].append(place)
    return found


def inspect_jobs(client: redis.Redis, statuses: dict[str, str]) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Why failed jobs failed, and where (up to 50) jobs that are neither finished nor failed sit."""
    reasons: Counter[str] = Counter()
    unfinished: list[dict[str, Any]] = []
    for job_id, status in statuses.items():
        if status == "failed":
            reasons[failure_reason(client, job_id)] += 1
        elif status != "finished" and len(unfinished) < 50:
            unfinished.append(where(client, job_id))
    return reasons, unfinished


def scan_keys(client: redis.Redis) -> tuple[dict[str, set[str]], int]:
    """Idempotency key (from the payload) -> ids of every job in Redis carrying it."""
    by_key: dict[str, set[str]] = {}
    names = [k for k in client.scan_iter(match="rq:job:*", count=2000) if k.count(b":") == 2]
    for start in range(0, len(names), 1000):
        chunk = names[start : start + 1000]
        with client.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.hget(name, "meta")
            metas = pipe.execute()
        for name, meta in zip(chunk, metas, strict=True):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                payload = json.loads(meta).get("payload") or {}
                if isinstance(payload.get("key"), str):
                    by_key.setdefault(payload["key"], set()).add(name.decode().removeprefix("rq:job:"))
    return by_key, len(names)


def verify(cluster: Cluster, submissions: Sequence[Submission]) -> Verdict:
    client = cluster.client()
    try:
        accepted = [s.job_id for s in submissions if s.job_id is not None]
        statuses, lost, executions = check_jobs(client, accepted)
        reasons, unfinished = inspect_jobs(client, statuses)
        repeated = [results_of(client, job_id) for job_id, n in executions.items() if n > 1][:20]
        by_key, scanned = scan_keys(client)
    finally:
        client.close()
    return Verdict(
        Counter(statuses.values()),
        lost,
        Counter(executions.values()),
        by_key,
        scanned,
        reasons,
        unfinished,
        repeated,
    )


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: int
    redis_restart: str
    kill_at: float
    redis_at: float
    drain_timeout: float
    client_timeout: float
    resubmit: float
    seed: int


async def drive(cluster: Cluster, options: Options) -> dict[str, Any]:
    """Start the load and the faults, wait for the load, drain; returns the raw observations."""
    started = time.monotonic()
    faults = Faults(started_wall=time.time())
    load = Load(
        end=started + options.duration,
        hard_end=started + options.duration + RETRY_TAIL,
        resubmit=options.resubmit,
        client_timeout=options.client_timeout,
        rng=random.Random(options.seed),
    )
    limits = httpx.Limits(
        max_connections=options.concurrency * 2, max_keepalive_connections=options.concurrency
    )
    stop = asyncio.Event()
    async with httpx.AsyncClient(
        base_url=cluster.base_url, timeout=options.client_timeout, limits=limits
    ) as http:
        guard = asyncio.create_task(supervise(cluster, started, stop))
        fault_tasks = [
            asyncio.create_task(at(started + options.kill_at, lambda: kill_a_worker(cluster, faults))),
            asyncio.create_task(
                at(started + options.redis_at, lambda: restart_redis(cluster, faults, options.redis_restart))
            ),
        ]
        faults.note("load started", concurrency=options.concurrency)
        await asyncio.gather(*(submitter(n, http, load) for n in range(options.concurrency)))
        load_s = time.monotonic() - started
        faults.note("load done", submissions=len(load.submissions))
        await asyncio.gather(*fault_tasks)
        drained, drain_s, pending = await drain(http, cluster, options.drain_timeout)
        faults.note("drained" if drained else "drain timed out", seconds=round(drain_s, 1), pending=pending)
        stop.set()
        await guard
    verdict = await asyncio.to_thread(verify, cluster, load.submissions)
    return {
        "load": load,
        "faults": faults,
        "verdict": verdict,
        "load_s": load_s,
        "drained": drained,
        "drain_s": drain_s,
        "pending_after_drain": pending,
        "total_s": time.monotonic() - started,
    }


def duplicates(load: Load, verdict: Verdict) -> dict[str, list[str]]:
    """Keys standing for more than one job, with the ids."""
    ids: dict[str, set[str]] = {key: set(found) for key, found in verdict.jobs_by_key.items()}
    for sub in load.submissions:
        for job_id in (sub.job_id, sub.resubmitted_job_id):
            if job_id is not None:
                ids.setdefault(sub.key, set()).add(job_id)
    return {key: sorted(found) for key, found in ids.items() if len(found) > 1}


def loss_analysis(lost: list[str], load: Load, faults: Faults) -> list[dict[str, Any]]:
    """Each lost job with when it was accepted, relative to the Redis crash (negative: before)."""
    by_id = {s.job_id: s for s in load.submissions if s.job_id is not None}
    rows = []
    for job_id in lost:
        sub = by_id[job_id]
        assert sub.accepted_at is not None
        relative = None if faults.crash_wall is None else round(sub.accepted_at - faults.crash_wall, 3)
        rows.append(
            {
                "job_id": job_id,
                "key": sub.key,
                "transport": sub.transport,
                "accepted_at_s": round(sub.accepted_at - faults.started_wall, 3),
                "accepted_minus_crash_s": relative,
                "within_everysec_window": relative is not None and -EVERYSEC_WINDOW <= relative <= 0,
            }
        )
    return rows


def report(raw: dict[str, Any], options: Options, cluster: Cluster) -> dict[str, Any]:
    load: Load = raw["load"]
    faults: Faults = raw["faults"]
    verdict: Verdict = raw["verdict"]
    accepted = [s for s in load.submissions if s.job_id is not None]
    never = [s for s in load.submissions if s.job_id is None]
    dups = duplicates(load, verdict)
    accepted_keys = {s.key for s in accepted}
    orphans = sorted(k for k in verdict.jobs_by_key if k not in accepted_keys)
    killed = faults.killed_job_id
    killed_status = None
    if killed is not None:
        client = cluster.client()
        try:
            status = client.hget(f"rq:job:{killed}", "status")
        finally:
            client.close()
        killed_status = status.decode() if isinstance(status, bytes) else None
    finished = verdict.statuses.get("finished", 0)
    failed = verdict.statuses.get("failed", 0)
    latencies = [s.latency_s for s in accepted if s.latency_s is not None]
    return {
        "duration_s": options.duration,
        "concurrency": options.concurrency,
        "redis_restart": options.redis_restart,
        "task": TASK,
        "submissions": len(load.submissions),
        "accepted": len(accepted),
        "accepted_rest": sum(1 for s in accepted if s.transport == "rest"),
        "accepted_graphql": sum(1 for s in accepted if s.transport == "graphql"),
        "accepted_after_retry": sum(1 for s in accepted if s.attempts > 1),
        "retries": sum(load.retry_reasons.values()),
        "retry_reasons": dict(load.retry_reasons.most_common()),
        "deduplicated_answers_graphql": sum(1 for s in accepted if s.deduplicated),
        "resubmitted": load.resubmits,
        "never_accepted": len(never),
        "never_accepted_reasons": dict(Counter((s.gave_up or "?")[:120] for s in never).most_common(5)),
        "finished": finished,
        "failed": failed,
        "failure_reasons": dict(verdict.failure_reasons.most_common(10)),
        "other": {k: v for k, v in verdict.statuses.items() if k not in {"finished", "failed"}},
        "other_jobs": verdict.unfinished,
        "lost": len(verdict.lost),
        "lost_jobs": loss_analysis(verdict.lost[:50], load, faults),
        "duplicated": len(dups),
        "duplicated_keys": dict(list(dups.items())[:20]),
        "jobs_scanned_in_redis": verdict.scanned,
        "jobs_without_accepted_key": len(orphans),
        "results_per_accepted_job": {str(k): v for k, v in sorted(verdict.executions.items())},
        "jobs_with_several_results": verdict.repeated,
        "killed_worker_job": {"id": killed, "final_status": killed_status},
        "fault_events": faults.events,
        "unexpected_process_exits": cluster.unexpected_exits,
        "drained": raw["drained"],
        "drain_s": round(raw["drain_s"], 1),
        "pending_after_drain": raw["pending_after_drain"],
        "throughput": {
            "accepted_per_s": round(len(accepted) / raw["load_s"], 1),
            "done_per_s": round((finished + failed) / (raw["load_s"] + raw["drain_s"]), 1),
        },
        "accept_latency_s": {
            "p50": round(percentile(latencies, 0.5), 4) if latencies else None,
            "p99": round(percentile(latencies, 0.99), 4) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 4) if latencies else None,
        },
        "total_s": round(raw["total_s"], 1),
        "target": {"lost": 0, "duplicated": 0},
        "target_met": not verdict.lost and not dups and not never,
    }


def print_table(result: dict[str, Any]) -> None:
    rows = [
        (
            "accepted (REST / GraphQL)",
            f"{result['accepted']} ({result['accepted_rest']} / {result['accepted_graphql']})",
        ),
        ("accepted after >= 1 retry", str(result["accepted_after_retry"])),
        ("client retries", str(result["retries"])),
        ("never accepted", str(result["never_accepted"])),
        ("resubmitted (same key again)", str(result["resubmitted"])),
        ("finished", str(result["finished"])),
        ("failed", str(result["failed"])),
        ("other", json.dumps(result["other"]) if result["other"] else "0"),
        ("lost", str(result["lost"])),
        ("duplicated", str(result["duplicated"])),
        (
            "killed worker's job",
            f"{result['killed_worker_job']['id']} -> {result['killed_worker_job']['final_status']}",
        ),
        ("unexpected process exits", str(len(result["unexpected_process_exits"]))),
        ("drain", f"{'done' if result['drained'] else 'TIMED OUT'} in {result['drain_s']} s"),
        (
            "accepted/s, done/s (load+drain)",
            f"{result['throughput']['accepted_per_s']}, {result['throughput']['done_per_s']}",
        ),
        ("accept latency p50/p99/max s", "{p50}/{p99}/{max}".format(**result["accept_latency_s"])),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"\nload and fault: {result['duration_s']:.0f} s, concurrency {result['concurrency']}, "
        f"Redis restart: {result['redis_restart']}"
    )
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    if result["retry_reasons"]:
        print("  retries by reason: " + ", ".join(f"{k}: {v}" for k, v in result["retry_reasons"].items()))
    for row in result["lost_jobs"][:10]:
        print(
            f"  LOST {row['job_id']} accepted T+{row['accepted_at_s']} s "
            f"({row['accepted_minus_crash_s']} s vs crash)"
        )
    for reason, count in result["failure_reasons"].items():
        print(f"  failed x{count}: {reason}")
    for job in result["other_jobs"][:10]:
        print(f"  NOT FINAL {job['job_id']}: status {job['status']}, held in {job['in'] or 'nothing'}")
    for exit_ in result["unexpected_process_exits"]:
        print(
            f"  EXITED {exit_['process']} pid {exit_['pid']} code {exit_['returncode']} "
            f"at T+{exit_['at_s']} s: {exit_['last_error']}"
        )
    for key, ids in list(result["duplicated_keys"].items())[:10]:
        print(f"  DUPLICATED {key}: {', '.join(ids)}")
    print(f"target lost = 0, duplicated = 0: {'met' if result['target_met'] else 'NOT met'}")


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def default_output(options: Options) -> Path:
    stem = f"load-and-fault-{date.today().isoformat()}"
    if options.duration != DEFAULT_DURATION or options.redis_restart != DEFAULT_RESTART:
        stem += f"-{options.redis_restart}-{options.duration:g}s"
    return RESULTS_DIR / f"{stem}.json"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds of load (60)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="submitters (32)")
    parser.add_argument("--redis-restart", choices=["crash", "graceful"], default=DEFAULT_RESTART)
    parser.add_argument("--kill-at", type=float, help="seconds into the load to kill a worker (duration/3)")
    parser.add_argument(
        "--redis-at", type=float, help="seconds into the load to restart Redis (duration*7/12)"
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="most seconds to drain (120)")
    parser.add_argument("--client-timeout", type=float, default=5.0, help="seconds per HTTP request (5)")
    parser.add_argument("--resubmit", type=float, default=0.1, help="share of keys sent again (0.1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the client's random choices")
    parser.add_argument(
        "--output", type=Path, help="JSON file (default bench/results/load-and-fault-DATE.json)"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs into this directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.duration <= 0 or args.concurrency < 2:
        raise SystemExit("need --duration > 0 and --concurrency >= 2 (one submitter per transport)")
    options = Options(
        duration=args.duration,
        concurrency=args.concurrency,
        redis_restart=args.redis_restart,
        kill_at=args.kill_at if args.kill_at is not None else args.duration * 20 / 60,
        redis_at=args.redis_at if args.redis_at is not None else args.duration * 35 / 60,
        drain_timeout=args.drain_timeout,
        client_timeout=args.client_timeout,
        resubmit=args.resubmit,
        seed=args.seed,
    )
    output = args.output or default_output(options)
    loadavg_before = os.getloadavg()
    print(f"load and fault: {options}, load average {loadavg_before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gql-jobs-load-fault-") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_redis()
            cluster.start_api()
            for _ in range(WORKERS):
                cluster.start_worker()
            client = cluster.client()
            try:
                cluster.workers[0].wait_until(
                    "the workers", lambda: int(client.scard("rq:workers")) >= WORKERS
                )
            finally:
                client.close()
            raw = asyncio.run(drive(cluster, options))
            result = report(raw, options, cluster)
        except BaseException:
            for log in cluster.logs():
                tail = log.read_text(errors="replace")[-1500:]
                print(f"--- {log.name} (tail)\n{tail}", file=sys.stderr)
            raise
        finally:
            cluster.stop_all()
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for log in cluster.logs():
                    shutil.copy(log, args.keep_logs / log.name)
    loadavg_after = os.getloadavg()
    document = {
        "benchmark": "load-and-fault",
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "options": vars(options),
        "loadavg_before": loadavg_before,
        "loadavg_after": loadavg_after,
        "note": (
            "appendfsync everysec: a machine crash may lose up to ~1 s (worst case ~2 s) of "
            "acknowledged writes; a SIGKILL of redis-server alone should lose none, since the AOF is "
            "written (not yet fsynced) before Redis replies"
        ),
        **result,
    }
    print_table(result)
    print(f"load average {loadavg_before} -> {loadavg_after}")
    write_json(document, output)
    print(f"wrote {output}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
