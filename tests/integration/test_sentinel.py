"""Redis Sentinel: a real master, two replicas and a sentinel on loopback; the master is killed.

The API (sync and async clients) and a worker subprocess reach Redis only through the sentinel.
With `GQL_JOBS_REDIS_WAIT_REPLICAS=1` a submission is acknowledged only once a replica holds it, so
killing the master loses no acknowledged job: that is the guarantee this test holds us to. (With
two replicas, the one not promoted follows the new master, and acknowledgements resume.)
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.dev import free_port
from gql_jobs.store.connections import worker_redis
from tests.conftest import ROOT, make_settings, subprocess_env, wait_for
from tests.redis_server import redis_server_binary

#: Five redis processes, a failover, worker subprocesses: minutes on a loaded CI machine; the
#: bounds below are safety nets against a hang, never a race with the machine's speed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
MASTER = "gqljobs"


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(args: list[str]) -> subprocess.Popen[bytes]:
    binary = redis_server_binary()
    assert binary is not None
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)


def answers(node: Node) -> bool:
    try:
        return bool(node.client().ping())
    except (redis.ConnectionError, redis.TimeoutError):  # not up yet, or too busy to answer yet
        return False


def sees_replicas(sentinel: Node, count: int) -> bool:
    try:
        return len(sentinel.client().sentinel_slaves(MASTER)) == count
    except (redis.ConnectionError, redis.TimeoutError):
        return False


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Node, list[Node], Node]]:
    nodes: list[Node] = []

    def server(name: str, *extra: str) -> Node:
        port = free_port()
        (tmp_path / name).mkdir()
        args = [
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path / name),
            *extra,
        ]
        node = Node(port, start(args))
        nodes.append(node)
        wait_for(lambda: answers(node))
        return node

    try:
        master = server("master")
        replicas = [server(f"replica{i}", "--replicaof", "127.0.0.1", str(master.port)) for i in (1, 2)]
        wait_for(lambda: master.client().info("replication")["connected_slaves"] == 2)
        sentinel_port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        sentinel = Node(sentinel_port, start([str(conf), "--sentinel"]))
        nodes.append(sentinel)
        wait_for(lambda: answers(sentinel))
        wait_for(lambda: sees_replicas(sentinel, 2))
        yield master, replicas, sentinel
    finally:
        for node in nodes:
            node.kill()


def submit_until_acknowledged(client: TestClient, n: int, deadline: float) -> str:
    """A client that retries through the failover, as the 503 + Retry-After invite it to."""
    key = f"sentinel-{n}"
    while time.monotonic() < deadline:
        response = client.post(
            "/submit-job", json={"task": "echo", "payload": {"n": n}}, headers={"Idempotency-Key": key}
        )
        if response.status_code == 200:
            return str(response.json()["job_id"])
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    raise AssertionError(f"submission {n} was never acknowledged")


def routing(sentinel: Node) -> dict[str, Any]:
    return {
        "sentinels": [f"127.0.0.1:{sentinel.port}"],
        "sentinel_master": MASTER,
        "redis_url": None,
        "redis_wait_replicas": 1,
        "poll_interval": 0.2,
    }


def fail_over(client: TestClient, master: Node, replicas: list[Node], sentinel: Node) -> list[str]:
    """Submit 20 jobs, kill the master, submit 20 more through the failover; the acknowledged ids."""
    deadline = time.monotonic() + 90
    acknowledged = [submit_until_acknowledged(client, n, deadline) for n in range(20)]
    master.kill()
    acknowledged += [submit_until_acknowledged(client, n, deadline) for n in range(20, 40)]
    promoted = sentinel.client().sentinel_get_master_addr_by_name(MASTER)
    assert isinstance(promoted, tuple)
    assert int(promoted[1]) in {r.port for r in replicas}
    return acknowledged


def test_failover_loses_no_acknowledged_job(cluster: tuple[Node, list[Node], Node]) -> None:
    master, replicas, sentinel = cluster
    with TestClient(create_app(make_settings(**routing(sentinel)))) as client:
        acknowledged = fail_over(client, master, replicas, sentinel)
        statuses = {client.get(f"/job-status/{job_id}").status_code for job_id in acknowledged}
        listed = client.post("/graphql", json={"query": "{ jobs(first: 100) { totalCount } }"}).json()
    assert len(set(acknowledged)) == 40
    assert statuses == {200}
    assert listed["data"]["jobs"]["totalCount"] == 40


def test_a_worker_carries_on_after_failover(cluster: tuple[Node, list[Node], Node]) -> None:
    """Jobs submitted through the failover all finish, the one in hand when the master died too;
    then the worker still stops promptly on SIGTERM (its warm shutdown does not hang)."""
    master, replicas, sentinel = cluster
    env = subprocess_env(
        GQL_JOBS_SENTINELS=f"127.0.0.1:{sentinel.port}",
        GQL_JOBS_SENTINEL_MASTER=MASTER,
        GQL_JOBS_LOG_FORMAT="text",
    )
    del env["REDIS_URL"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "gql_jobs", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with TestClient(create_app(make_settings(**routing(sentinel)))) as client:
            acknowledged = fail_over(client, master, replicas, sentinel)

            def finished() -> bool:
                statuses = [client.get(f"/job-status/{job_id}") for job_id in acknowledged]
                return all(s.status_code == 200 and s.json()["status"] == "finished" for s in statuses)

            wait_for(finished, timeout=120)
        worker.terminate()
        assert worker.wait(timeout=60) == 0  # a hang, not a slow machine, reaches this
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_worker_command_cut_off_by_the_failover_is_retried_on_the_new_master(
    cluster: tuple[Node, list[Node], Node],
) -> None:
    """A worker blocked in BLMOVE when its master dies waits out the failover and retries on the
    new master, which it asks Sentinel for (redis-py's own Sentinel connection retries a command on
    the address it had cached: the dead master, until its retries run out)."""
    master, replicas, sentinel = cluster
    client = worker_redis(make_settings(**routing(sentinel)))
    probe = master.client()

    def kill_once_blocked() -> None:
        """Kill the master once the BLMOVE waits on it (a 0.5 s timer raced the 1 s BLMOVE)."""
        with contextlib.suppress(AssertionError):
            wait_for(lambda: probe.info("clients")["blocked_clients"] >= 1)
        master.kill()

    killer = threading.Thread(target=kill_once_blocked)
    try:
        client.ping()
        killer.start()
        # Blocks shorter than the connection's read bound (a retried 5 s BLMOVE outlived it on the
        # new master); repeated until Sentinel names the new master, in case a busy machine let a
        # block end before the kill landed (the next one then meets the dead master).
        give_up = time.monotonic() + 120
        while True:
            assert client.blmove("empty", "elsewhere", 1) is None
            address = client.connection_pool.get_master_address()  # type: ignore[attr-defined]
            if int(address[1]) != master.port:
                break
            assert time.monotonic() < give_up, "Sentinel never promoted a replica"
        assert int(address[1]) in {r.port for r in replicas}
    finally:
        killer.join()
        probe.close()
        client.close()


class Interrupted(Exception):
    pass


def test_an_interrupted_blocking_read_leaves_no_reply_behind(cluster: tuple[Node, list[Node], Node]) -> None:
    """As RQ's SIGTERM handler interrupts its BLMOVE: the next pipeline must not wait behind the
    BLMOVE, nor read its reply (redis-py's Sentinel connection kept the connection open)."""
    _, _, sentinel = cluster
    client = worker_redis(make_settings(**routing(sentinel)))

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):  # a BLMOVE far longer than the alarm: it is cut off, on any machine
            client.blmove("empty", "elsewhere", 60)
        with client.pipeline() as pipeline:
            pipeline.hset("worker", "death", "now")
            pipeline.expire("worker", 60)
            assert pipeline.execute() == [1, True]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        client.close()


def switch_over(sentinel: Node) -> bool:
    """Ask the sentinel for a failover; False while it has not yet read the replicas' state
    (NOGOODSLAVE: it found them in the master's INFO but has not asked them yet)."""
    try:
        sentinel.client().execute_command("SENTINEL", "FAILOVER", MASTER)  # type: ignore[no-untyped-call]
    except redis.ResponseError as exc:
        if "NOGOODSLAVE" in str(exc):
            return False
        raise
    return True


def test_a_submission_after_a_switchover_is_written_to_the_new_master(
    cluster: tuple[Node, list[Node], Node],
) -> None:
    """`SENTINEL FAILOVER`: the old master lives on as a replica. Sentinel closes its clients'
    connections as it demotes it (so none is answered READONLY: that case is in test_faults.py),
    and the API's next write goes, on a new connection, to the new master: answered stored."""
    master, replicas, sentinel = cluster
    old = master.client()
    with TestClient(create_app(make_settings(**{**routing(sentinel), "redis_wait_replicas": 0}))) as client:
        before = client.post("/submit-job", json={"task": "echo", "payload": {"n": 0}})
        assert before.status_code == 200, before.text  # the pool holds a connection to the master
        wait_for(lambda: switch_over(sentinel), timeout=120)
        wait_for(lambda: old.info("replication")["role"] == "slave", timeout=120)
        after = client.post("/submit-job", json={"task": "echo", "payload": {"n": 1}})
        assert after.status_code == 200, after.text
    promoted = sentinel.client().sentinel_get_master_addr_by_name(MASTER)
    assert isinstance(promoted, tuple) and int(promoted[1]) in {r.port for r in replicas}
    new = redis.Redis(port=int(promoted[1]))
    assert new.exists(f"rq:job:{after.json()['job_id']}")
    new.close()
    old.close()
