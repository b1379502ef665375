"""The compose profile's rq-dashboard, run for real: the pinned set of constraints/dashboard.txt, started with
the Dockerfile's `dashboard` command, against the suite's Redis holding jobs our service wrote.

No Docker engine runs here, so the test does what the image does: a virtualenv with
constraints/dashboard.txt and the same rq and redis as the API (the image takes the API's wheels; here,
the versions this suite runs on, so each leg of ./scripts/test checks its own RQ major), cached between
runs under ~/.cache/gql-jobs-tests. rq-dashboard 0.9.0 crashed at start without `six`, and without
`--json` it cannot read our jobs at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.dev import free_port
from tests.conftest import ROOT, redis_test_url, wait_for

pytestmark = pytest.mark.integration

REQUIREMENTS = ROOT / "constraints" / "dashboard.txt"
USER, PASSWORD = "ops", "s3cret-for-tests"


def _dashboard_command() -> list[str]:
    """The `CMD` of the Dockerfile's `dashboard` stage."""
    stage = (ROOT / "Dockerfile").read_text().split(" AS dashboard", 1)[1].split("\nFROM ", 1)[0]
    line = next(line for line in stage.splitlines() if line.startswith("CMD "))
    command: list[str] = json.loads(line.removeprefix("CMD "))
    return command


@pytest.fixture(scope="module")
def dashboard_venv() -> Path:
    """A virtualenv with the dashboard's pinned set and this suite's rq and redis (made once, then cached)."""
    pins = [f"rq=={version('rq')}", f"redis=={version('redis')}"]
    key = hashlib.sha1((REQUIREMENTS.read_text() + " ".join(pins) + sys.version).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gql-jobs-tests"
    venv = cache / f"dashboard-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"dashboard-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other leg of ./scripts/test may be making one too
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)  # an install cut short
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            install = [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(REQUIREMENTS), *pins]
            done = subprocess.run(install, capture_output=True, text=True, timeout=600, check=False)
            assert done.returncode == 0, f"installing the dashboard failed:\n{done.stdout}\n{done.stderr}"
            (venv / ".complete").touch()
    return venv


def _env(venv: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_DASHBOARD_")}
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "RQ_DASHBOARD_REDIS_URL": redis_test_url(),
            "RQ_DASHBOARD_BIND": "127.0.0.1",
            "RQ_DASHBOARD_PORT": str(port),
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def dashboard(dashboard_venv: Path, redis_client: redis.Redis) -> Iterator[str]:
    port = free_port()
    env = _env(dashboard_venv, port, RQ_DASHBOARD_USERNAME=USER, RQ_DASHBOARD_PASSWORD=PASSWORD)
    process = subprocess.Popen(
        _dashboard_command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else "exited"
        try:
            return httpx.get(f"{base}/0/data/queues.json", timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout=30)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_the_image_refuses_to_start_the_dashboard_without_basic_auth(dashboard_venv: Path) -> None:
    done = subprocess.run(
        _dashboard_command(),
        env=_env(dashboard_venv, free_port()),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert b"RQ_DASHBOARD_PASSWORD" in done.stderr


def test_without_credentials_every_page_is_refused(dashboard: str) -> None:
    for path in ("/", "/0/data/queues.json", "/0/view/jobs"):
        assert httpx.get(f"{dashboard}{path}").status_code == 401, path
    assert httpx.get(f"{dashboard}/0/data/queues.json", auth=(USER, "wrong")).status_code == 401


def test_it_lists_and_shows_the_jobs_our_service_wrote(
    dashboard: str, client: TestClient, drain: Callable[..., None]
) -> None:
    done_id = client.post("/submit-job", json={"task": "add", "payload": {"a": 20, "b": 22}}).json()["job_id"]
    drain()
    queued_id = client.post("/submit-job", json={"task": "add", "payload": {"a": 7, "b": 5}}).json()["job_id"]
    auth = (USER, PASSWORD)

    queues = httpx.get(f"{dashboard}/0/data/queues.json", auth=auth).json()["queues"]
    assert {"name": "default", "count": 1} in [{"name": q["name"], "count": q["count"]} for q in queues]

    listed = httpx.get(f"{dashboard}/0/data/jobs/default/queued/8/asc/1.json", auth=auth).json()
    assert [job["id"] for job in listed["jobs"]] == [queued_id]
    finished = httpx.get(f"{dashboard}/0/data/jobs/default/finished/8/asc/1.json", auth=auth).json()
    assert [job["id"] for job in finished["jobs"]] == [done_id]

    job = httpx.get(f"{dashboard}/0/data/job/{done_id}.json", auth=auth).json()
    assert job["status"] == "finished"
    assert "20" in job["description"] and "22" in job["description"]  # the payload, as RQ's call string
    assert job["result"] == {"sum": 42} or "42" in json.dumps(job["result"])

    page = httpx.get(f"{dashboard}/0/view/job/{queued_id}", auth=auth)
    assert page.status_code == 200 and queued_id in page.text
