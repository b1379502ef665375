"""`gql-jobs dev` on a machine with no Redis configured: API + worker + in-memory Redis."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import pytest
import redis

import gql_jobs
from gql_jobs.dev import embedded_redis, free_port
from tests.conftest import ROOT, in_memory_env, run_cli, start_dev, subprocess_env, wait_for

#: `gql-jobs dev` starts an API, a worker and an in-memory Redis: tens of seconds on a loaded CI
#: machine. The waits are safety nets against a hang, not bounds on its speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_dev_runs_a_job_end_to_end_in_memory() -> None:
    port = free_port()
    process = start_dev(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), timeout=120)
        job_id = httpx.post(f"{base}/submit-job", json={"task": "add", "payload": {"a": 1, "b": 2}}).json()[
            "job_id"
        ]
        wait_for(lambda: httpx.get(f"{base}/job-status/{job_id}").json()["status"] == "finished")
        assert httpx.get(f"{base}/job-status/{job_id}").json()["result"] == {"total": 3}
        graphql = httpx.post(f"{base}/graphql", json={"query": f'{{ job(id: "{job_id}") {{ status }} }}'})
        assert graphql.json() == {"data": {"job": {"status": "FINISHED"}}}
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert b"IN MEMORY" in output


def test_serve_refuses_to_start_without_redis() -> None:
    env = in_memory_env()
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert b"REDIS_URL is not set" in result.stderr


def test_serve_says_clearly_when_redis_is_unreachable() -> None:
    env = subprocess_env(REDIS_URL="redis://127.0.0.1:1/0")
    result = run_cli("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert b"cannot reach Redis" in result.stderr


def test_invalid_settings_fail_at_start_in_one_line() -> None:
    env = subprocess_env(RQ_DEFAULT_TIMEOUT="soon")
    result = run_cli("worker", "--burst", env=env)
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "RQ_DEFAULT_TIMEOUT" in lines[0]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_dev_stops_saying_why_when_its_worker_dies() -> None:
    """Without its worker, `dev` would accept jobs that queue forever: it stops, exit 1, one clear line."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gql_jobs", "dev", "--port", str(port)],
        env=subprocess_env(),  # the test Redis: no embedded one to wait for
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}"), timeout=120)
        (worker,) = [child for child in psutil.Process(process.pid).children() if "worker" in child.cmdline()]
        worker.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 1
    assert b"the worker exited (code -9), so jobs would queue forever; stopping" in stderr


def test_dev_without_fakeredis_or_redis_says_what_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "fakeredis"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('not installed (simulated)')\n")
    env = in_memory_env(PYTHONPATH=f"{tmp_path}:{ROOT}")
    result = run_cli("dev", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines() == [
        "gql-jobs dev: REDIS_URL is not set and the in-memory Redis is not installed: "
        "pip install 'gql-jobs[dev-server]', or set REDIS_URL"
    ]


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version", env=subprocess_env(), check=True)
    assert result.stdout.decode() == f"gql-jobs {gql_jobs.__version__}\n"


def _handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def test_the_in_memory_redis_lets_go_of_a_client_that_left() -> None:
    """fakeredis < 2.38 spun a thread at full CPU for every client that had disconnected (its TCP
    handler looped on an empty read): `gql-jobs dev` burned a core after its first request. Our
    floor is where the handler ends at EOF; this holds it (a condition, not a CPU measure)."""
    with embedded_redis() as url:
        before = len(_handler_threads())
        client = redis.Redis.from_url(url)
        assert client.ping()
        wait_for(lambda: len(_handler_threads()) == before + 1)
        client.close()
        wait_for(lambda: len(_handler_threads()) == before)


def test_free_ports_are_below_the_ephemeral_range_where_no_outgoing_connection_takes_them() -> None:
    """An outgoing connection's local port comes from the ephemeral range: a port picked there
    was taken, on a busy machine, between the probe and the server's bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(1024 <= port < low for port in ports), sorted(ports)
    assert len(ports) > 1  # spread, not one port every caller races for
    for port in list(ports)[:5]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
