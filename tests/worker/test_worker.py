"""Real worker processes: `gql-jobs worker`, a plain `rq worker -S json`, stopping and shutdown."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.domain import JobFilter, JobStatus, PageRequest, SubmitRequest, Submitted
from gql_jobs.errors import ServiceUnavailableError
from gql_jobs.service.jobs import JobService
from tests.conftest import ROOT, eventually, redis_test_url, subprocess_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

StartWorker = Callable[..., subprocess.Popen[bytes]]


def status_of(client: TestClient, job_id: str) -> str:
    return str(client.get(f"/job-status/{job_id}").json()["status"])


async def has_status(service: JobService, job_id: str, status: JobStatus) -> bool:
    return (await service.get(ADMIN, job_id)).status == status


async def all_finished(service: JobService, ids: list[str]) -> bool:
    records = await service.get_many(ADMIN, ids)
    return all(r is not None and r.status == JobStatus.FINISHED for r in records)


def test_gql_jobs_worker_runs_a_rest_job_to_the_end(client: TestClient, worker_process: StartWorker) -> None:
    worker_process()
    job_id = client.post("/submit-job", json={"task": "add", "payload": {"a": 20, "b": 22}}).json()["job_id"]
    wait_for(lambda: status_of(client, job_id) == "finished")
    assert client.get(f"/job-status/{job_id}").json()["result"] == {"total": 42}


def test_plain_rq_worker_with_json_serializer_runs_our_jobs(
    client: TestClient, redis_client: redis.Redis
) -> None:
    rq_cli = shutil.which("rq", path=str(Path(sys.executable).parent))
    assert rq_cli is not None
    job_id = client.post("/submit-job", json={"task": "echo", "payload": {"k": "v"}}).json()["job_id"]
    subprocess.run(
        [rq_cli, "worker", "-S", "json", "-u", redis_test_url(), "--burst", "default"],
        env=subprocess_env(),
        cwd=ROOT,
        check=True,
        timeout=60,
    )
    assert client.get(f"/job-status/{job_id}").json()["result"] == {"k": "v"}


def test_rq_info_sees_our_jobs_and_workers(
    client: TestClient, worker_process: StartWorker, tmp_path: Path
) -> None:
    """RQ's own monitor (`rq info`, on whichever RQ is installed) counts what we wrote, and lists
    our worker while it runs one of our jobs."""
    rq_cli = shutil.which("rq", path=str(Path(sys.executable).parent))
    assert rq_cli is not None
    for n in range(3):
        client.post("/submit-job", json={"task": "echo", "payload": {"n": n}})

    def rq_info(*flags: str) -> str:
        argv = [rq_cli, "info", "-S", "json", "-u", redis_test_url(), "--raw", *flags]
        return subprocess.run(
            argv, env=subprocess_env(), cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()

    assert "queue default 3" in rq_info("--only-queues", "default")
    worker_process()
    job_id = client.post(
        "/submit-job",
        json={"task": "wait_for_file", "payload": {"path": str(tmp_path / "go"), "timeout": 30}},
    ).json()["job_id"]
    wait_for(lambda: status_of(client, job_id) == "started")
    assert " busy " in rq_info("--only-workers", "default")
    (tmp_path / "go").touch()
    wait_for(lambda: status_of(client, job_id) == "finished")


async def test_cancel_stops_a_running_job(
    service: JobService, worker_process: StartWorker, tmp_path: Path
) -> None:
    worker_process()
    request = SubmitRequest("wait_for_file", {"path": str(tmp_path / "never"), "timeout": 10})
    record = (await service.submit(ADMIN, request)).record
    await eventually(lambda: has_status(service, record.id, JobStatus.STARTED))
    stopped = await service.cancel(ADMIN, record.id)
    assert stopped.status == JobStatus.STOPPED
    assert (await service.requeue(ADMIN, record.id)).status == JobStatus.QUEUED


async def test_sigterm_lets_the_current_job_finish(
    service: JobService, worker_process: StartWorker, tmp_path: Path
) -> None:
    worker = worker_process()
    release = tmp_path / "release"
    request = SubmitRequest("wait_for_file", {"path": str(release), "timeout": 30})
    record = (await service.submit(ADMIN, request)).record
    await eventually(lambda: has_status(service, record.id, JobStatus.STARTED))
    worker.send_signal(signal.SIGTERM)
    release.touch()
    assert worker.wait(timeout=30) == 0
    finished = await service.get(ADMIN, record.id)
    assert (finished.status, finished.result) == (JobStatus.FINISHED, "released")


async def test_worker_pool_drains_a_queue(service: JobService, worker_process: StartWorker) -> None:
    await service.submit_many(ADMIN, [SubmitRequest("echo", {"i": i}) for i in range(20)])
    with anyio.fail_after(120):
        worker = await anyio.run_process(
            [sys.executable, "-m", "gql_jobs", "worker", "--pool", "2", "--burst"],
            env=subprocess_env(),
            cwd=ROOT,
            check=False,
            stdout=None,
            stderr=None,
        )
    assert worker.returncode == 0
    page = await service.list_jobs(ADMIN, JobFilter(), PageRequest(first=50))
    assert len(page.items) == 20
    assert {record.status for _, record in page.items} == {JobStatus.FINISHED}


async def test_reads_never_tear_while_a_worker_writes(
    service: JobService, worker_process: StartWorker
) -> None:
    """The lesson's field-by-field read could show `finished` with `ended_at: null`; ours must not."""
    outcomes = await service.submit_many(ADMIN, [SubmitRequest("echo", {"i": i}) for i in range(150)])
    ids = [r.record.id for r in outcomes if isinstance(r, Submitted)]
    torn: list[str] = []
    stop = anyio.Event()

    async def reader() -> None:
        while not stop.is_set():
            try:
                records = await service.get_many(ADMIN, ids)
            except ServiceUnavailableError:  # a read over its deadline on a busy machine: not a tear
                await anyio.lowlevel.checkpoint()  # let the loop run before reading again
                continue
            for record in records:
                if record is None:
                    continue
                if record.status == JobStatus.FINISHED and (record.ended_at is None or record.result is None):
                    torn.append(record.id)
                if record.status == JobStatus.STARTED and record.started_at is None:
                    torn.append(record.id)

    async with anyio.create_task_group() as readers:
        readers.start_soon(reader)
        worker_process()
        try:
            await eventually(lambda: all_finished(service, ids), within=60)
        finally:
            stop.set()
    assert torn == []


def test_sigterm_stops_an_idle_worker_at_once(worker_process: StartWorker, redis_client: redis.Redis) -> None:
    worker = worker_process()

    def idle() -> bool:
        return any(redis_client.hget(key, "state") == b"idle" for key in redis_client.smembers("rq:workers"))

    wait_for(idle)  # RQ's signal handlers are in place once it waits for work
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0


@pytest.mark.timeout(600)
async def test_several_workers_drain_one_queue_and_no_job_runs_twice(
    service: JobService, worker_process: StartWorker, redis_client: redis.Redis
) -> None:
    """Five worker processes start (seconds each on a loaded CI machine) and 120 jobs each fork a
    work horse: the waits are generous safety nets, and every worker is registered before the jobs
    are submitted, so they all compete for the queue however slowly each one starts."""
    for _ in range(3):
        worker_process()
    worker_process("--pool", "2")
    wait_for(lambda: redis_client.scard("rq:workers") >= 4, timeout=300)
    outcomes = await service.submit_many(ADMIN, [SubmitRequest("count_run", {"i": i}) for i in range(120)])
    ids = [o.record.id for o in outcomes if isinstance(o, Submitted)]

    await eventually(lambda: all_finished(service, ids), within=400)
    runs = [int(redis_client.get(f"test:runs:{job_id}") or 0) for job_id in ids]
    assert runs == [1] * 120
