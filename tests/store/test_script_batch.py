"""The write script (`store.script_batch`): its commands run in order, atomically, whole or not at
all when Redis refuses writes, on every Redis we may meet (Redis 6 and 7, and fakeredis, the dev
mode's), however long a batch's lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from redis.exceptions import ResponseError

from gql_jobs.constants import INDEX_BY_TAG, MAX_BATCH_SIZE, MAX_TAGS
from gql_jobs.dev import free_port
from gql_jobs.domain import SubmitRequest
from gql_jobs.service.submission import prepare
from gql_jobs.settings import Settings
from gql_jobs.store import rq_format
from gql_jobs.store.script_batch import MAX_WORDS, SCRIPT, ScriptBatch, refusal
from gql_jobs.store.writes import plain_batch
from gql_jobs.tasks import TaskRegistry, task_modules
from tests.redis_server import RedisServer, redis_server_binaries

BINARIES = redis_server_binaries()
VERSIONS: list[str | None] = [*sorted(BINARIES)] or [None]


@pytest.fixture(params=VERSIONS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server of each version at hand."""
    if request.param is None:
        pytest.skip("no redis-server binary")
    own = RedisServer(tmp_path, binary=BINARIES[request.param])
    own.start()
    yield own
    own.stop()


@pytest.fixture(params=["redis-server", "fakeredis"])
def client(request: pytest.FixtureRequest, server: RedisServer) -> Iterator[redis.Redis]:
    if request.param == "fakeredis":
        fake = fakeredis.FakeRedis()
        yield fake
        fake.close()
        return
    real = redis.Redis.from_url(server.url)
    yield real
    real.close()


def run(client: redis.Redis, batch: ScriptBatch) -> Any:
    return client.execute_command("EVAL", SCRIPT, *batch.arguments())  # type: ignore[no-untyped-call]


def test_the_commands_run_in_order(client: redis.Redis) -> None:
    batch = ScriptBatch()
    batch.hset("h", {"a": 1, b"b": b"\x00\xff", "c": "text"})
    batch.sadd("s", "x", "y")
    batch.rpush("l", "1", "2")
    batch.lpush("l", "0")
    batch.zadd("z", {"m": 5, "n": 1.5})
    batch.hincrby("counts", "k", 3)
    batch.hincrby("counts", "k", 4)
    batch.expire("counts", 100)
    batch.xadds("stream", 0, 60_000, [b"first", b"second"])
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe("channel")
    batch.publish("channel", "hello")

    assert run(client, batch) == batch.commands == 10
    assert client.hgetall("h") == {b"a": b"1", b"b": b"\x00\xff", b"c": b"text"}
    assert client.smembers("s") == {b"x", b"y"}
    assert client.lrange("l", 0, -1) == [b"0", b"1", b"2"]
    assert client.zrange("z", 0, -1, withscores=True) == [(b"n", 1.5), (b"m", 5.0)]
    assert client.hget("counts", "k") == b"7"
    assert 0 < client.ttl("counts") <= 100
    entries: Any = client.xrange("stream")
    assert [fields for _, fields in entries] == [{b"j": b"first"}, {b"j": b"second"}]
    assert 0 < client.pttl("stream") <= 60_000
    messages = [pubsub.get_message(timeout=5) for _ in range(2)]  # the subscription, then ours
    assert [m["data"] for m in messages if m and m["type"] == "message"] == [b"hello"]
    pubsub.close()


def test_the_keys_are_named(client: redis.Redis) -> None:
    """KEYS names every key written (as Redis asks of scripts), once; a channel is no key."""
    batch = ScriptBatch()
    batch.hset("h", {"a": 1})
    batch.hincrby("h", "a", 1)
    batch.xadds("stream", 0, 1000, [b"m"])
    batch.publish("channel", "x")
    arguments = batch.arguments()
    keys = int(arguments[0])
    assert arguments[: 1 + keys] == [2, "h", "stream"]


def test_long_lists_are_split_and_all_arrive_in_order(client: redis.Redis) -> None:
    """Lua's `unpack` stops at ~8,000 values: a list beyond `MAX_WORDS` goes as several
    commands, so a batch of any size fits (here 8 times the limit)."""
    count = MAX_WORDS * 8 + 7
    ids = [f"id-{i}" for i in range(count)]
    batch = ScriptBatch()
    batch.rpush("queue", *ids)
    batch.sadd("set", *ids)
    batch.zadd("scheduled", {job_id: i for i, job_id in enumerate(ids)})
    batch.xadds("stream", 0, 60_000, [job_id.encode() for job_id in ids])
    run(client, batch)
    assert client.lrange("queue", 0, -1) == [i.encode() for i in ids]
    assert client.scard("set") == count
    assert client.zrange("scheduled", 0, -1) == [i.encode() for i in ids]
    entries: Any = client.xrange("stream")
    assert [f[b"j"] for _, f in entries] == [i.encode() for i in ids]


def test_an_empty_batch_is_not_sent(client: redis.Redis) -> None:
    batch = ScriptBatch()
    assert not batch
    pipe = client.pipeline(transaction=True)
    batch.stage_on(pipe)
    assert len(pipe) == 0


#: Settings that make Redis refuse writes, what they were, and the refusal: over `maxmemory`, and
#: `min-replicas-to-write` with no replica.
REFUSING = {
    "OOM": ({"maxmemory-policy": "noeviction", "maxmemory": "1"}, {"maxmemory": "0"}),
    "NOREPLICAS": ({"min-replicas-to-write": "1"}, {"min-replicas-to-write": "0"}),
}


@pytest.mark.parametrize("code", list(REFUSING))
def test_a_batch_refused_by_a_redis_refusing_writes_writes_nothing(server: RedisServer, code: str) -> None:
    """Redis 7 answers the refusal's own error, Redis 6 a script error quoting it: both read as a
    refusal, and nothing of the batch was written (a script's first write is the one refused)."""
    refusing, restored = REFUSING[code]
    client = redis.Redis.from_url(server.url)
    for name, value in refusing.items():
        client.config_set(name, value)
    batch = ScriptBatch()
    batch.hset("h", {"a": 1})
    batch.rpush("l", "x")
    try:
        with pytest.raises(ResponseError) as refused:
            run(client, batch)
    finally:
        for name, value in restored.items():
            client.config_set(name, value)
    assert refusal(refused.value) == code
    assert client.dbsize() == 0
    client.close()


def test_a_batch_refused_by_a_read_only_replica_writes_nothing(server: RedisServer) -> None:
    """A replica (here of a master it never reaches) refuses the script's first write."""
    client = redis.Redis.from_url(server.url)
    try:
        client.replicaof("127.0.0.1", free_port())
        batch = ScriptBatch()
        batch.hset("h", {"a": 1})
        with pytest.raises(ResponseError) as refused:
            run(client, batch)
        assert refusal(refused.value) == "READONLY"
    finally:
        client.replicaof("NO", "ONE")
    assert client.exists("h") == 0
    client.close()


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        # What Redis 6.2 answers (recorded): the refusal quoted inside a script error.
        (
            "Error running script (call to f_a74f): @user_script:1: @user_script: 1: "
            "-OOM command not allowed when used memory > 'maxmemory'.",
            "OOM",
        ),
        (
            "Error running script (call to f_a74f): @user_script:1: @user_script: 1: "
            "-READONLY You can't write against a read only replica.",
            "READONLY",
        ),
        (
            "Error running script (call to f_a74f): @user_script:1: @user_script: 14: "
            "-NOREPLICAS Not enough good replicas to write.",
            "NOREPLICAS",
        ),
        # Redis 7, for the refusals redis-py has no exception class for.
        ("NOREPLICAS Not enough good replicas to write. script: a74f, on @user_script:14.", "NOREPLICAS"),
        ("MISCONF Redis is configured to save RDB snapshots, but it's unable to persist", "MISCONF"),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", None),
        ("Error running script (call to f_a74f): @user_script:3: Wrong number of args", None),
        # A refusal's words elsewhere in a message (a value quoted back) are not one.
        ("Error running script (call to f_a74f): @user_script:5: bad value '-OOM here'", None),
    ],
)
def test_refusals_are_told_from_other_errors(text: str, refused: str | None) -> None:
    assert refusal(ResponseError(text)) == refused


def test_redis_7_refusals_are_their_own_errors() -> None:
    assert refusal(redis.exceptions.OutOfMemoryError("command not allowed when used memory")) == "OOM"
    assert refusal(redis.exceptions.ReadOnlyError("You can't write against a replica.")) == "READONLY"


def test_the_largest_batch_the_settings_allow_is_one_command_redis_takes(server: RedisServer) -> None:
    """`max_batch_size` jobs with `max_tags` tags each, both at their bounds: Redis 6 takes at
    most 1,048,576 arguments in a command; the jobs are all stored, each listed under every tag."""
    settings = Settings.model_validate(
        {"redis_url": server.url, "max_batch_size": MAX_BATCH_SIZE, "max_tags": MAX_TAGS}
    )
    registry = TaskRegistry.from_modules(task_modules([], builtins=True))
    tags = tuple(f"t{i}" for i in range(MAX_TAGS))
    jobs = [
        prepare(SubmitRequest("echo", {"i": i}, tags=tags), registry, settings, "owner")
        for i in range(MAX_BATCH_SIZE)
    ]
    batch = plain_batch(jobs, [rq_format.new_record(job) for job in jobs], settings.index_retention)
    assert len(batch.command()) < 1024 * 1024
    client = redis.Redis.from_url(server.url)
    try:
        run(client, batch)
        assert client.llen("rq:queue:default") == MAX_BATCH_SIZE
        assert client.xlen(INDEX_BY_TAG + tags[-1]) == MAX_BATCH_SIZE
    finally:
        client.close()
