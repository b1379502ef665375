"""Starting and ending the benchmarks' processes: binaries, ports, process families, readiness.

Shared by `bench.stack` (the performance run), `bench.load_and_fault` and
`bench.subscription_latency`. Light on imports: `bench.subscription_latency` is also a task module
that plain `rq` workers import per job.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from gql_jobs.dev import free_port

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0

__all__ = ["ROOT", "STOP_TIMEOUT", "end_family", "family", "free_port", "http_ok", "kill_family"]
__all__ += ["redis_server_binary", "rq_cli", "wait_until"]


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which(
        "redis-server", path=str(Path(sys.executable).parent)
    )
    if found is None:
        raise SystemExit("no redis-server on PATH or next to this Python")
    return found


def rq_cli() -> str:
    found = shutil.which("rq", path=str(Path(sys.executable).parent)) or shutil.which("rq")
    if found is None:
        raise SystemExit("no `rq` command next to this Python or on PATH")
    return found


def http_ok(url: str) -> bool:
    import httpx  # noqa: PLC0415 (only the processes that wait for an API need it)

    return httpx.get(url, timeout=1.0).status_code == 200


def family(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (those still alive)."""
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_family(pid: int) -> int:
    """SIGSTOP the parent (so it forks no more), SIGKILL its descendants, then it. Returns how many."""
    members = []
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).suspend()
        members = family(pid)
    for member in reversed(members):  # children first, the stopped parent last
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    return len(members)


def end_family(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process (RQ's warm shutdown, uvicorn's graceful exit), SIGKILL what is left."""
    members = family(process.pid)
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)


def wait_until(
    what: str, condition: Callable[[], bool], process: subprocess.Popen[bytes], see: object, timeout: float
) -> None:
    """Poll `condition` (exceptions count as "not yet") until it holds; fail fast if `process` exits.

    `see` names where to look on failure (a log file or directory)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start (code {process.returncode}); see {see}")
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {see}")
