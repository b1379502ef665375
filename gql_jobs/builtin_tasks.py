"""Tasks that ship with gql-jobs (switch off with `GQL_JOBS_BUILTIN_TASKS=false`)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from gql_jobs.progress import report_progress
from gql_jobs.tasks import task


@task("heavy_compute", description="The lesson's task: two seconds of work, then an echo and a summary.")
def heavy_compute(payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(2)
    return {
        "echo": payload,
        "summary": f"Processed keys: {list(payload.keys())}",
    }


@task("echo", description="Returns its payload unchanged.")
def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


class SleepInput(BaseModel):
    """Input of the `sleep` task."""

    seconds: float = Field(default=1.0, ge=0, le=3600, description="How long to sleep.")
    steps: int = Field(default=10, ge=1, le=1000, description="How many progress reports to make.")


@task("sleep", input_model=SleepInput, description="Sleeps, reporting progress at every step.")
def sleep(data: SleepInput) -> dict[str, float]:
    step = data.seconds / data.steps
    for done in range(data.steps):
        time.sleep(step)
        report_progress(done + 1, data.steps, f"step {done + 1} of {data.steps}")
    return {"slept": data.seconds}


class FailInput(BaseModel):
    """Input of the `fail` task."""

    message: str = Field(default="task failed on purpose", max_length=1000)


class TaskFailedError(RuntimeError):
    """Raised by the `fail` task."""


@task("fail", input_model=FailInput, description="Raises an error (to try failure handling).")
def fail(data: FailInput) -> None:
    raise TaskFailedError(data.message)
