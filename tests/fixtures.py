"""Tasks used by the tests. Workers import them by dotted path, so they live in an importable module."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, Field
from rq import get_current_job

from gql_jobs import task
from gql_jobs.progress import report_progress


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


def _wait_until_exists(path: str, deadline: float) -> bool:
    """Whether `path` came to exist before the `time.monotonic()` deadline (a test creates it)."""
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.path.exists(path)


@task("wait_for_file", description="Waits until a file exists (lets a test hold a job in STARTED).")
def wait_for_file(payload: dict[str, Any]) -> str:
    deadline = time.monotonic() + float(payload.get("timeout", 30))
    return "released" if _wait_until_exists(str(payload["path"]), deadline) else "gave up"


class GatedStepsInput(BaseModel):
    gate: str = Field(description="A directory: step n is reported once a file named n is in it.")
    steps: int = Field(default=4, ge=1, le=100)
    timeout: float = Field(default=30, gt=0, le=300)


@task(
    "gated_steps",
    input_model=GatedStepsInput,
    description="Reports progress a step each time the test allows.",
)
def gated_steps(data: GatedStepsInput) -> dict[str, int]:
    """Like the builtin `sleep`, but each step waits for the test instead of a clock: a test that
    wants to see every step releases the next one only once it saw the last, on any machine."""
    deadline = time.monotonic() + data.timeout
    for step in range(1, data.steps + 1):
        if not _wait_until_exists(os.path.join(data.gate, str(step)), deadline):
            raise TimeoutError(f"step {step} was never released")
        report_progress(step, data.steps, f"step {step} of {data.steps}")
    return {"steps": data.steps}


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


@task("flaky", description="Fails its first `failures` runs (counted in Redis), then returns its run number.")
def flaky(payload: dict[str, Any]) -> int:
    job = get_current_job()
    assert job is not None
    run = int(job.connection.incr(f"test:runs:{job.id}"))
    if run <= int(payload.get("failures", 2)):
        raise RuntimeError(f"try {run} failed")
    return run
