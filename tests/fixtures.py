"""Tasks used by the tests. Workers import them by dotted path, so they live in an importable module."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, Field
from rq import get_current_job

from gql_jobs import task


class AddInput(BaseModel):
    a: int
    b: int = Field(ge=0)


class AddOutput(BaseModel):
    total: int


@task("add", input_model=AddInput, description="Adds two numbers.")
def add(data: AddInput) -> AddOutput:
    return AddOutput(total=data.a + data.b)


@task("unserializable")
def unserializable(payload: dict[str, Any]) -> object:
    return object()


@task("wait_for_file", description="Waits until a file exists (lets a test hold a job in STARTED).")
def wait_for_file(payload: dict[str, Any]) -> str:
    path = str(payload["path"])
    deadline = time.monotonic() + float(payload.get("timeout", 30))
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "released" if os.path.exists(path) else "gave up"


@task("count_run", description="Counts its own runs in Redis (to prove no job runs twice).")
def count_run(payload: dict[str, Any]) -> int:
    job = get_current_job()
    assert job is not None
    return int(job.connection.incr(f"test:runs:{job.id}"))


class ScaleInput(BaseModel):
    factor: float


@task("scale", input_model=ScaleInput, description="Returns its factor (pydantic reads 'inf' as infinity).")
def scale(data: ScaleInput) -> float:
    return data.factor
