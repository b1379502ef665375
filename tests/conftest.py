"""Fixture chain: Redis URL -> flushed client -> settings -> service -> app client; plus workers.

Integration tests use a real Redis (database 13 by default, flushed before and after each test;
override with GQL_JOBS_TEST_REDIS_URL) and real RQ workers. Unit tests use fakeredis.

The service is async, and its async Redis client belongs to the event loop that first uses it.
Tests that call it directly are `async def` (anyio's pytest plugin, asyncio backend) and get it
from `service` (closed at the end, on the test's loop) or `fake_service`. Tests that drive the app
through a `TestClient` and also call the service use `on_app` (the app's own loop).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

import anyio
import fakeredis
import psutil
import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker

from gql_jobs.app import build_service, create_app
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.store.connections import close_async
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.tasks import TaskRegistry, task_modules
from gql_jobs.worker.job import EventedJob
from tests.redis_server import RedisServer, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
P = ParamSpec("P")
T = TypeVar("T")
#: The `make_service` fixture: a service built from settings of a test's own.
MakeService = Callable[[Settings], JobService]
_private_redis: RedisServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Pick the Redis the suite uses: GQL_JOBS_TEST_REDIS_URL if set, else a private redis-server.

    The private server (on a free loopback port, no persistence) means the suite neither needs nor
    disturbs a Redis already running on the machine. Without any redis-server binary we fall back
    to database 13 of a local Redis on 6379.
    """
    global _private_redis
    if os.environ.get("GQL_JOBS_TEST_REDIS_URL"):
        return
    if redis_server_binary() is not None:
        _private_redis = RedisServer(Path(tempfile.mkdtemp(prefix="gql-jobs-test-redis-")))
        _private_redis.start()
        os.environ["GQL_JOBS_TEST_REDIS_URL"] = _private_redis.url
    else:
        os.environ["GQL_JOBS_TEST_REDIS_URL"] = "redis://127.0.0.1:6379/13"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _private_redis is not None:
        _private_redis.stop()


def redis_test_url() -> str:
    return os.environ["GQL_JOBS_TEST_REDIS_URL"]


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: the test Redis, the test tasks, and no `.env` or environment surprises."""
    values: dict[str, Any] = {"redis_url": redis_test_url(), "tasks": ["tests.fixtures"], **overrides}
    return Settings.model_validate(values)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_test_url())
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - CI starts one
        pytest.fail(f"integration tests need Redis at {redis_test_url()}: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(redis_client: redis.Redis) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """`async def` tests (and async fixtures) run on asyncio, as the app does."""
    return "asyncio"


@pytest.fixture
async def service(settings: Settings, anyio_backend: str) -> AsyncIterator[JobService]:
    """The app's service; its clients are closed at the end, on the test's event loop (the app's
    lifespan closes them first when a `TestClient` used it: closing again is harmless)."""
    service = build_service(settings)
    yield service
    await close_service(service)


@pytest.fixture
async def make_service(anyio_backend: str) -> AsyncIterator[MakeService]:
    """Build services with settings of their own; each is closed at the end, like `service`."""
    made: list[JobService] = []

    def make(settings: Settings) -> JobService:
        made.append(build_service(settings))
        return made[-1]

    yield make
    for service in made:
        await close_service(service)


async def close_service(service: JobService) -> None:
    service.connection.close()
    await close_async(service.async_connection)


def on_app(client: TestClient, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a service coroutine on the app's event loop (where its async client lives)."""
    assert client.portal is not None, "use the client inside its `with` block"

    async def run() -> T:
        return await call(*args, **kwargs)

    return client.portal.call(run)


@pytest.fixture
def client(settings: Settings, service: JobService) -> Iterator[TestClient]:
    with TestClient(create_app(settings, service)) as test_client:
        yield test_client


@pytest.fixture
def drain(redis_client: redis.Redis) -> Callable[..., None]:
    """Run a real RQ worker in burst mode (in-process SimpleWorker, publishing job events as
    `gql-jobs worker` does) until the queues are empty."""

    def run(*queues: str) -> None:
        worker = SimpleWorker(
            list(queues) or ["default"], connection=redis_client, serializer=SERIALIZER, job_class=EventedJob
        )
        worker.work(burst=True, logging_level="WARNING")

    return run


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))}
    env.update({"REDIS_URL": redis_test_url(), "GQL_JOBS_TASKS": "tests.fixtures", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def in_memory_env(**extra: str) -> dict[str, str]:
    """`subprocess_env` without `REDIS_URL`: `gql-jobs dev` starts its in-memory Redis."""
    env = subprocess_env(**extra)
    del env["REDIS_URL"]
    return env


def run_cli(*argv: str, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess[bytes]:
    """`gql-jobs ARGV` run to its end in the checkout (output captured, bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "gql_jobs", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=check,
    )


def start_dev(
    port: int, env: dict[str, str] | None = None, output: IO[bytes] | int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """`gql-jobs dev` on `port` on its in-memory Redis (`in_memory_env()` unless `env` is given), its
    output (both streams) piped, or written to `output` (a long-lived server's logs fill a pipe)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gql_jobs", "dev", "--port", str(port)],
        env=env if env is not None else in_memory_env(),
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def worker_process(redis_client: redis.Redis) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `gql-jobs worker` subprocesses; each is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, command: list[str] | None = None) -> subprocess.Popen[bytes]:
        argv = command or [sys.executable, "-m", "gql_jobs", "worker", *args]
        process = subprocess.Popen(argv, env=subprocess_env(), cwd=ROOT)
        started.append(process)
        wait_for(lambda: redis_client.scard("rq:workers") > 0 or process.poll() is not None)
        assert process.poll() is None, "worker exited at start"
        return process

    yield start
    for process in started:
        try:
            family = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for member in family:  # a work horse runs in its own session: a dead worker leaves it behind
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()


#: The default bound of `wait_for` and `eventually`: a safety net against a hang, never a race (a
#: condition met on an idle machine in milliseconds can take tens of seconds on a loaded CI one).
WAIT_BOUND = 60.0


def wait_for(condition: Callable[[], object], timeout: float = WAIT_BOUND, interval: float = 0.02) -> None:
    """Poll until `condition()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


async def eventually(
    condition: Callable[[], Awaitable[object]], within: float = WAIT_BOUND, interval: float = 0.02
) -> None:
    """`wait_for` for async tests: await `condition()` until truthy; fail after `within` seconds."""
    try:
        with anyio.fail_after(within):
            while True:  # a worker process changes what we poll: there is nothing to wait on
                if await condition():
                    return
                await anyio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"condition not met within {within} s") from None


@pytest.fixture
def fake_service() -> JobService:
    """A service on fakeredis, for fast unit tests of its logic: its synchronous client (RQ's)
    and its async client share one fake server."""
    registry = TaskRegistry.from_modules(task_modules(["tests.fixtures"], builtins=True))
    settings = Settings.model_validate({"redis_url": "redis://unused", "tasks": ["tests.fixtures"]})
    server = fakeredis.FakeServer()
    return JobService(
        fakeredis.FakeRedis(server=server), registry, settings, fakeredis.FakeAsyncRedis(server=server)
    )
