"""Inline-value documents with and without validation by shape, side by side in one process.

`python -m bench.shapes_ab [REQUESTS] [ROUNDS]`: CPU per request (best of ROUNDS) of `job(id)` and
`submitJob` with variables and inline, every inline document new (never repeated across rounds,
unlike `bench.compare`, whose later rounds meet the earlier rounds' documents in the cache), on
two apps: "old" validates every new document in full, "new" once per shape (`graphql/shapes.py`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from graphql import DocumentNode, GraphQLError, validate
from graphql.validation.validate import ValidationAbortedError

from bench import workload
from bench.compare import scenarios
from bench.inprocess import call
from bench.stack import Stack
from bench.tasks import TASK_MODULES
from gql_jobs.app import create_app
from gql_jobs.graphql.documents import QUERY_TOO_COMPLEX, VALIDATION_FAILED, DocumentChecker, coded
from gql_jobs.settings import Settings

NEW = DocumentChecker._validate
IDS = 1000


def _old(self: DocumentChecker, document: DocumentNode, size: int) -> tuple[GraphQLError, ...]:
    """Before shapes: every new document through graphql-core's rules."""
    return tuple(
        coded(e, QUERY_TOO_COMPLEX if isinstance(e, ValidationAbortedError) else VALIDATION_FAILED)
        for e in validate(self.schema, document, self.rules, hide_suggestions=self.limits.hide_suggestions)
    )


NAMES = (
    "ours: job(id) variables",
    "ours: job(id) inline, new document",
    "ours: submitJob variables",
    "ours: submitJob inline, new document",
)


def _new(make: Any, i: int) -> tuple[str, str, bytes]:
    """The i-th request, made a document never sent before once `_job_inline`'s 1,000 ids wrap
    round (a comment: the same shape, a new text)."""
    method, path, body = make(i)
    if i >= IDS and body.startswith(b'{"query":"{ job(id: '):
        body = body.replace(b' } } }"', f' }} }} }} # {i // IDS}"'.encode(), 1)
    return method, path, body


async def measure(url: str, count: int, rounds: int) -> dict[str, float]:
    settings = Settings.model_validate({"redis_url": url, "tasks": TASK_MODULES.split(",")})
    ids = await asyncio.to_thread(workload.fill_service, url, IDS)
    workload.drain(url, evented=True)
    apps = {"old": create_app(settings), "new": create_app(settings)}
    made = scenarios(ids)
    best: dict[str, float] = {}
    offset = 0
    warm = max(1, count // 10)
    for _ in range(rounds):
        for name in NAMES:
            for mode in ("old", "new"):
                DocumentChecker._validate = _old if mode == "old" else NEW  # type: ignore[method-assign]
                requests = [_new(made[name][1], offset + i) for i in range(warm + count)]
                offset += len(requests)
                for request in requests[:warm]:
                    await call(apps[mode], request)
                began = time.process_time()
                for request in requests[warm:]:
                    await call(apps[mode], request)
                micros = (time.process_time() - began) / count * 1e6
                key = f"{name} [{mode}]"
                best[key] = min(best.get(key, micros), micros)
    DocumentChecker._validate = NEW  # type: ignore[method-assign]
    return best


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory(prefix="gql-jobs-shapes-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            best = asyncio.run(measure(stack.redis_url, count, rounds))
        finally:
            stack.stop_all()
    ratios: dict[str, Any] = {}
    for mode in ("old", "new"):
        for op, inline, variables in (
            ("job(id)", NAMES[1], NAMES[0]),
            ("submitJob", NAMES[3], NAMES[2]),
        ):
            ratios[f"{op} inline / variables [{mode}]"] = round(
                best[f"{inline} [{mode}]"] / best[f"{variables} [{mode}]"], 2
            )
    figures = {k: round(v) for k, v in best.items()}
    print(json.dumps({"us_cpu_per_request_best": figures, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
