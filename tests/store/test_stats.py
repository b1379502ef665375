"""The job history's storage (`store.stats`): what a write stages, what a read merges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.connection import Connection

from gql_jobs.constants import STATS_MAX_WINDOW, STATS_TTL
from gql_jobs.store import stats
from gql_jobs.store.stats import BUCKET_BOUNDS, BUCKET_RATIO, bucket_of

NOW = 29_000_000 * 60 + 17.5  # 17.5 s into minute 29,000,000
MINUTE = stats.minute_of(NOW)


def write(connection: redis.Redis, *stage: tuple[Any, ...]) -> None:
    with connection.pipeline(transaction=True) as pipe:
        for function, *args in stage:
            function(pipe, *args)
        pipe.execute()


def test_each_run_time_falls_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    assert bucket_of(0) == bucket_of(0.0005) == bucket_of(0.001) == 0
    for index, bound in enumerate(BUCKET_BOUNDS[1:-1], start=1):
        assert bucket_of(bound) == index
        assert bucket_of(bound * 1.0001) == index + 1
        assert bound / BUCKET_BOUNDS[index - 1] == pytest.approx(BUCKET_RATIO)
    assert bucket_of(10**7) == len(BUCKET_BOUNDS) - 1  # longer than the top bound: the top bucket
    assert BUCKET_BOUNDS[-1] == pytest.approx(10**6)


def test_a_batch_counts_per_queue_and_task_in_its_minute_and_expires(redis_client: redis.Redis) -> None:
    write(redis_client, (stats.count_submitted, {("default", "echo"): 3, ("other", "add"): 1}, NOW))

    name = stats.key(MINUTE)
    assert redis_client.hgetall(name) == {b"default|echo|submitted": b"3", b"other|add|submitted": b"1"}
    assert STATS_TTL - 5 < redis_client.ttl(name) <= STATS_TTL


def test_an_outcome_counts_the_job_and_times_it_only_when_finished(redis_client: redis.Redis) -> None:
    write(
        redis_client,
        (stats.count_outcome, "default", "echo", "finished", 0.25, NOW),
        (stats.count_outcome, "default", "echo", "failed", 3.0, NOW),
        (stats.count_outcome, "default", "echo", "stopped", None, NOW),
        (stats.count_outcome, "default", "echo", "retried", 1.0, NOW),  # it runs again: not an outcome
    )

    assert redis_client.hgetall(stats.key(MINUTE)) == {
        b"default|echo|finished": b"1",
        f"default|echo|rt{bucket_of(0.25)}".encode(): b"1",
        b"default|echo|us": b"250000",
        b"default|echo|failed": b"2",
    }
    assert redis_client.ttl(stats.key(MINUTE)) > 0


def test_nothing_is_staged_for_an_empty_batch_or_a_retry(redis_client: redis.Redis) -> None:
    write(
        redis_client,
        (stats.count_submitted, {}, NOW),
        (stats.count_outcome, "default", "echo", "retried", 1.0, NOW),
    )

    assert redis_client.keys("gql_jobs:stats:*") == []


def finished(queue: str, task: str, seconds: float, times: int = 1) -> dict[bytes, bytes]:
    prefix = f"{queue}|{task}|"
    return {
        f"{prefix}finished".encode(): str(times).encode(),
        f"{prefix}rt{bucket_of(seconds)}".encode(): str(times).encode(),
        f"{prefix}us".encode(): str(round(seconds * 1e6) * times).encode(),
    }


def test_percentiles_are_the_bounds_of_the_buckets_holding_their_ranks() -> None:
    minute = {**finished("q", "t", 0.01, 89), **finished("q", "u", 1.0, 10)}
    slow = finished("q", "t", 100.0)

    (bucket,), totals = stats.merge([minute, slow], MINUTE, step=2)

    run_time = bucket.run_time
    assert run_time.count == 100 and bucket.finished == 100
    assert run_time.p50 == BUCKET_BOUNDS[bucket_of(0.01)]
    assert run_time.p90 == BUCKET_BOUNDS[bucket_of(1.0)]  # rank 90: the first of the 1 s jobs
    assert run_time.p99 == BUCKET_BOUNDS[bucket_of(1.0)]
    assert run_time.max == BUCKET_BOUNDS[bucket_of(100.0)]
    assert run_time.mean == pytest.approx((89 * 0.01 + 10 * 1.0 + 100.0) / 100)
    for true, reported in ((0.01, run_time.p50), (1.0, run_time.p90), (100.0, run_time.max)):
        assert reported is not None and true <= reported < true * BUCKET_RATIO * 1.0001
    assert totals == bucket


def test_buckets_of_a_step_start_at_the_window_and_filters_pick_queue_and_task() -> None:
    hashes: list[dict[bytes, bytes]] = [
        {b"a|echo|submitted": b"2", b"b|echo|submitted": b"5", b"a|add|failed": b"1"},
        {},
        {b"a|echo|submitted": b"1", **finished("a", "echo", 0.5)},
        {b"b|add|submitted": b"7"},
    ]
    first = MINUTE - 3

    buckets, totals = stats.merge(hashes, first, step=2)
    assert [b.start for b in buckets] == [
        datetime.fromtimestamp(first * 60, UTC),
        datetime.fromtimestamp((first + 2) * 60, UTC),
    ]
    assert [(b.minutes, b.submitted, b.finished, b.failed) for b in buckets] == [(2, 7, 0, 1), (2, 8, 1, 0)]
    assert (totals.minutes, totals.submitted, totals.finished, totals.failed) == (4, 15, 1, 1)
    assert buckets[0].run_time.count == 0 and buckets[0].run_time.p50 is None

    _, of_a = stats.merge(hashes, first, step=4, queue="a")
    _, of_add = stats.merge(hashes, first, step=4, task="add")
    _, of_a_echo = stats.merge(hashes, first, step=4, queue="a", task="echo")
    assert (of_a.submitted, of_a.failed, of_a.finished) == (3, 1, 1)
    assert (of_add.submitted, of_add.failed) == (7, 1)
    assert (of_a_echo.submitted, of_a_echo.failed, of_a_echo.run_time.count) == (3, 0, 1)


def test_a_queue_name_holding_the_separator_is_still_read_whole() -> None:
    """Workers count the queues they were told to work, which RQ lets be named anything."""
    _, totals = stats.merge([{b"odd|name|echo|submitted": b"4"}], MINUTE, step=1, queue="odd|name")

    assert totals.submitted == 4


def test_fields_it_does_not_know_are_ignored() -> None:
    _, totals = stats.merge([{b"q|t|rt999": b"1", b"q|t|rtx": b"1", b"q|t|other": b"1"}], MINUTE, 1)

    assert (totals.submitted, totals.run_time.count) == (0, 0)


@contextmanager
def counted_sends() -> Iterator[list[int]]:
    """How many times a client writes to Redis (a pipeline is one write)."""
    count = [0]
    original: Callable[..., None] = Connection.send_packed_command

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        original(self, command, check_health)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Connection, "send_packed_command", counted)
        yield count


def test_the_longest_window_is_read_in_one_round_trip(redis_client: redis.Redis) -> None:
    oldest, newest = MINUTE - STATS_MAX_WINDOW + 1, MINUTE
    for minute in (oldest, newest, oldest - 1, newest + 1):  # the two just outside are not read
        write(redis_client, (stats.count_submitted, {("default", "echo"): 1}, minute * 60.0))
    redis_client.ping()  # connected

    with counted_sends() as sends:
        found = stats.history(redis_client, NOW, STATS_MAX_WINDOW, 60, None, None)

    assert sends == [1]
    assert len(found.buckets) == STATS_MAX_WINDOW // 60
    assert found.totals.submitted == 2
    assert found.buckets[0].submitted == found.buckets[-1].submitted == 1
    assert found.buckets[-1].start == datetime.fromtimestamp((newest - 59) * 60, UTC)


def test_one_queue_and_task_are_read_by_their_fields_alone(redis_client: redis.Redis) -> None:
    write(
        redis_client,
        (stats.count_submitted, {("a", "echo"): 2, ("a", "add"): 3, ("b", "echo"): 5}, NOW),
        (stats.count_outcome, "a", "echo", "finished", 2.0, NOW),
        (stats.count_outcome, "a", "echo", "failed", None, NOW),
    )

    (minute,) = stats.read_window(redis_client, MINUTE, 1, queue="a", task="echo")
    found = stats.history(redis_client, NOW, 1, 1, "a", "echo").totals

    assert set(minute) == {f.encode() for f in ("a|echo|submitted", "a|echo|finished", "a|echo|failed")} | {
        b"a|echo|us",
        f"a|echo|rt{bucket_of(2.0)}".encode(),
    }
    assert (found.submitted, found.finished, found.failed, found.run_time.count) == (2, 1, 1, 1)
    assert len(stats.fields_of("a", "echo")) == 4 + len(BUCKET_BOUNDS)
