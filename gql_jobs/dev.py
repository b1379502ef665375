"""`gql-jobs dev`: the whole service in one command (API + worker, and Redis in memory if none).

With no `REDIS_URL`, an in-process fakeredis TCP server stands in for Redis so a fresh machine
with only Python can run everything; it says loudly that state lives in memory. The worker runs as
a subprocess (RQ forks a work horse per job, which must not happen inside the API process).

If that worker dies, the API alone would accept jobs that then queue forever: `gql-jobs dev` stops
instead, saying why (exit 1). It does not restart the worker: a worker that crashed once (a task
module that fails to import, a Redis that went away) would most likely crash again, in a loop.
fakeredis is an extra (`gql-jobs[dev-server]`): without it and without `REDIS_URL`, `dev` says so in
one line.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import uvicorn

from gql_jobs.errors import RedisNotConfiguredError
from gql_jobs.settings import Settings, load_settings
from gql_jobs.store.connections import describe
from gql_jobs.web.server import GuardedHttpToolsProtocol


def free_port() -> int:
    """A loopback TCP port free now, below the kernel's ephemeral range when there is room.

    A port the kernel hands out (binding port 0) comes from that range, and so does the local end
    of every outgoing connection: between this probe and the caller's own bind, any connection
    made on the machine (a load generator makes thousands) can take it, and a server then failed
    to start with "address already in use". Below the range only listening sockets take ports."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 20_000), low) if low > 2048 else 0
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    with socket.socket() as probe:  # nothing free below the range: any port
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux); 0 where it cannot be read."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


@contextmanager
def embedded_redis() -> Iterator[str]:
    """Serve an in-memory Redis (fakeredis) on a loopback port for as long as the block runs."""
    try:
        from fakeredis import TcpFakeServer  # noqa: PLC0415 (only dev mode needs it)
    except ImportError:
        raise RedisNotConfiguredError(
            "REDIS_URL is not set and the in-memory Redis is not installed: "
            "pip install 'gql-jobs[dev-server]', or set REDIS_URL"
        ) from None

    port = free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    # Handler threads can sit in a fake BLPOP long after their client left: never wait for them.
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
        server.server_close()


def run_dev(settings: Settings, host: str, port: int) -> int:
    """Serve until stopped (0), or until the worker dies (1, with a line saying so)."""
    # uvicorn re-raises the SIGTERM it caught once it has shut down; make that unwind our `finally`
    # blocks (stop the worker, then the embedded Redis) instead of killing the process outright.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with _redis_for(settings) as url:
        os.environ.setdefault("GQL_JOBS_LOG_FORMAT", "text")
        os.environ.setdefault("GQL_JOBS_CORS_LOCALHOST", "true")
        if load_settings().cors_localhost:  # as the API will read it
            print(
                "gql-jobs dev: CORS allows any http://localhost:<port> and http://127.0.0.1:<port> "
                "origin (a frontend's dev server); set GQL_JOBS_CORS_LOCALHOST=false to turn it off.",
                flush=True,
            )
        if url is not None:  # the embedded Redis: tell the worker and the API where it is
            os.environ.update({"REDIS_URL": url, "GQL_JOBS_REDIS_URL": url})
        server = uvicorn.Server(
            uvicorn.Config(
                "gql_jobs.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                log_level="info",
                http=GuardedHttpToolsProtocol,
            )
        )
        # Its own process group: what the worker starts (RQ's scheduler process) is stopped with it,
        # even when the worker itself died first.
        worker = subprocess.Popen(
            [sys.executable, "-m", "gql_jobs", "worker"], env=dict(os.environ), start_new_session=True
        )
        stopping = threading.Event()
        died = threading.Event()
        threading.Thread(
            target=_stop_when_worker_dies, args=(worker, server, stopping, died), daemon=True
        ).start()
        try:
            server.run()
        finally:
            stopping.set()
            _stop(worker)
    return 1 if died.is_set() else 0


def _stop_when_worker_dies(
    worker: subprocess.Popen[bytes], server: uvicorn.Server, stopping: threading.Event, died: threading.Event
) -> None:
    """Wait for the worker's exit; unless we are stopping it ourselves, stop the API too."""
    code = worker.wait()
    if stopping.is_set():
        return
    died.set()
    print(
        f"gql-jobs dev: the worker exited (code {code}), so jobs would queue forever; stopping. "
        "See the worker's output above, then run gql-jobs dev again.",
        file=sys.stderr,
        flush=True,
    )
    server.should_exit = True


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker's whole process group: SIGTERM (finish the current job), then SIGKILL."""
    _signal_group(worker, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        worker.wait(timeout=10)
    _signal_group(worker, signal.SIGKILL)  # whatever is left of the group
    worker.wait()


def _signal_group(worker: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the group is gone already
        os.killpg(worker.pid, signum)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _redis_for(settings: Settings) -> Iterator[str | None]:
    """The embedded Redis's URL, or `None` when the settings already name a Redis."""
    if settings.redis_url or settings.sentinels:
        print(f"gql-jobs dev: using Redis at {describe(settings)}", flush=True)
        yield None
        return
    with embedded_redis() as url:
        print(
            "gql-jobs dev: REDIS_URL is not set, so jobs live IN MEMORY (embedded fakeredis at "
            f"{url}); they are lost when this process stops. Set REDIS_URL to use a real Redis.",
            flush=True,
        )
        yield url
