"""Registers `bench.noop.noop` as the gql-jobs task `bench_noop`.

Set `GQL_JOBS_TASKS=bench.tasks,bench.noop`: importing this module declares the task under the
function's own module (`bench.noop`, where workers import it from), and listing `bench.noop` after
it makes the registry pick it up. `bench.noop` stays free of gql_jobs imports (see its docstring).
"""

from __future__ import annotations

import gql_jobs
from bench import noop

TASK = "bench_noop"
TASK_MODULES = "bench.tasks,bench.noop"

gql_jobs.task(TASK, description="Returns an echo and a summary at once (benchmarks).")(noop.noop)
