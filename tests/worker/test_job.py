"""`EventedJob`: what a job's end adds to the pipeline RQ sends anyway (no round trip of its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis import Redis
from redis.client import Pipeline
from rq import Queue

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.domain import SubmitRequest
from gql_jobs.service.jobs import JobService
from gql_jobs.store.rq_format import SERIALIZER

pytestmark = pytest.mark.anyio

Commands = list[tuple[str, ...]]


@contextmanager
def sent_commands() -> Iterator[tuple[list[Commands], Commands]]:
    """Every pipeline sent (its commands), and every command sent on its own, by any client."""
    pipelines: list[Commands] = []
    alone: Commands = []
    send_pipeline = Pipeline.execute
    send_command: Callable[..., Any] = Redis.execute_command

    def execute(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        pipelines.append([tuple(str(part) for part in command[:3]) for command, _ in self.command_stack])
        return send_pipeline(self, *args, **kwargs)

    def execute_command(self: Redis, *args: Any, **kwargs: Any) -> Any:
        alone.append(tuple(str(part) for part in args[:3]))
        return send_command(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "execute", execute)
        patch.setattr(Redis, "execute_command", execute_command)
        yield pipelines, alone


def touches(commands: Commands, prefix: str) -> bool:
    return any(len(command) > 1 and command[1].startswith(prefix) for command in commands)


async def test_the_history_of_each_jobs_end_rides_on_rqs_own_pipeline(
    service: JobService, drain: Callable[..., None]
) -> None:
    await service.submit_many(ADMIN, [SubmitRequest("echo", {})] * 3 + [SubmitRequest("fail", {})] * 2)

    with sent_commands() as (pipelines, alone):
        drain()

    counted = [commands for commands in pipelines if touches(commands, "gql_jobs:stats:")]
    assert len(counted) == 5  # one per job
    for commands in counted:  # the one RQ sends to move the job to its finished or failed registry
        assert touches(commands, "rq:finished:default") or touches(commands, "rq:failed:default"), commands
        assert any(c[0] == "EXPIRE" and c[1].startswith("gql_jobs:stats:") for c in commands)
    assert not touches(alone, "gql_jobs:stats:")
    totals = (await service.stats(ADMIN, 2, 2, queue="default")).totals
    assert (totals.submitted, totals.finished, totals.failed) == (5, 3, 2)
    assert totals.run_time.count == 3


def test_a_job_of_an_undeclared_task_counts_as_other(drain: Callable[..., None], redis_client: Redis) -> None:
    """What a stored job says names no field: only declared tasks do (as for `/metrics`)."""
    queue = Queue("default", connection=redis_client, serializer=SERIALIZER)
    queue.enqueue("builtins.len", {}, meta={"task_name": "made-up"})  # any RQ client may write jobs

    drain()

    keys = list(redis_client.scan_iter("gql_jobs:stats:*"))
    fields = {f.decode() if isinstance(f, bytes) else f for key in keys for f in redis_client.hkeys(key)}
    assert "default|(other)|finished" in fields
    assert not any("made-up" in f or "len" in f for f in fields)
