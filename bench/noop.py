"""The benchmarks' no-op task: the lesson's `heavy_compute` without its two-second sleep.

Standard library only, on purpose: a plain `rq worker` imports a job's module in every work horse
it forks (its parent never imports it), so a heavy module (gql_jobs, pydantic: ~150 ms) would make
plain RQ look slow for reasons that have nothing to do with the worker. Every job of every
benchmark (ours, the lesson's, raw RQ) calls this same function, so results are the same size.
"""

from __future__ import annotations

from typing import Any

#: The dotted path RQ stores (and every worker imports).
FUNC_PATH = "bench.noop.noop"


def noop(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = payload or {}
    return {"echo": payload, "summary": f"Processed keys: {list(payload.keys())}"}
