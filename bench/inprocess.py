"""CPU per request of the app itself: the ASGI app called in-process, no HTTP server, no client.

    .venv/bin/python -m bench.inprocess [OP ...] [--requests 1000] [--rounds 5]

For comparing code paths (what a change saves, where GraphQL's cost is) with far less noise than
a load test: no sockets to the client, no second process competing for the 2 cores. Starts a
private redis-server, builds the app with `create_app`, makes finished jobs for reads, then calls
the app with each operation's requests (`bench.run.request_of`) one after another and reports
the best of `--rounds` of the process CPU time per request, in microseconds. `--stub` adds each
submit operation again with the service's submission replaced by a stub that checks and stamps
the job but writes nothing (the cost of the transport alone).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import workload
from bench.run import OPS, request_of
from bench.stack import Stack
from bench.tasks import TASK_MODULES
from gql_jobs import heap
from gql_jobs.app import create_app
from gql_jobs.auth import Principal, owner_of
from gql_jobs.domain import SubmitRequest, Submitted
from gql_jobs.service.jobs import JobService
from gql_jobs.service.submission import prepare
from gql_jobs.settings import Settings
from gql_jobs.store.rq_format import new_record

DEFAULT_OPS = ("gql_floor", "rest_status", "gql_job", "rest_submit", "gql_submit", "gql_submit_batch")
Request = tuple[str, str, bytes]


def http_scope(method: str, target: str, headers: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of an HTTP/1.1 request from a loopback client (`target`: path and query)."""
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def call(app: Any, request: Request) -> None:
    method, path, body = request
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    scope = http_scope(method, path, headers)
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise SystemExit(f"{method} {path} answered {status}")


def stub_submissions(service: JobService) -> None:
    """Checks and stamps jobs as the service does, writes nothing."""

    async def submit_many(caller: Principal | None, requests: Sequence[SubmitRequest]) -> list[Any]:
        owner = owner_of(caller) if caller else None
        return [
            Submitted(new_record(prepare(r, service.registry, service.settings, owner))) for r in requests
        ]

    async def submit(caller: Principal | None, request: SubmitRequest) -> Submitted:
        return (await submit_many(caller, [request]))[0]  # type: ignore[no-any-return]

    service.submit_many = submit_many  # type: ignore[method-assign]
    service.submit = submit  # type: ignore[method-assign]


async def measure(
    redis_url: str, ops: Sequence[str], count: int, rounds: int, stub: bool
) -> dict[str, float]:
    settings = Settings.model_validate({"redis_url": redis_url, "tasks": TASK_MODULES.split(",")})
    ids = await asyncio.to_thread(workload.fill_service, redis_url, 200)  # it runs a loop of its own
    workload.drain(redis_url, evented=True)
    variants = [(op, False) for op in ops]
    variants += [(op, True) for op in ops if stub and OPS[op].figure == "submit"]
    best: dict[str, float] = {}
    apps = {False: create_app(settings), True: create_app(settings)}
    heap.freeze_startup_objects()  # as the app's lifespan does under a server (not run in-process)
    stub_submissions(apps[True].state.service)
    for _ in range(rounds):
        for op_name, stubbed in variants:
            method, paths, bodies = request_of(OPS[op_name], ids)
            requests = [
                (method, paths[i % len(paths)], (bodies[i % len(bodies)] if bodies else "").encode())
                for i in range(count)
            ]
            app = apps[stubbed]
            for request in requests[: max(1, count // 20)]:  # warm-up
                await call(app, request)
            began = time.process_time()
            for request in requests:
                await call(app, request)
            per_request = (time.process_time() - began) / count * 1e6
            label = f"{op_name} (service stubbed)" if stubbed else op_name
            best[label] = min(best.get(label, per_request), per_request)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ops", nargs="*", metavar="OP", help=f"of {', '.join(sorted(OPS))}")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stub", action="store_true", help="also measure submits with the service stubbed")
    args = parser.parse_args(argv)
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="gql-jobs-inprocess-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            best = asyncio.run(
                measure(stack.redis_url, args.ops or DEFAULT_OPS, args.requests, args.rounds, args.stub)
            )
        finally:
            stack.stop_all()
    for label, micros in best.items():
        print(f"  {label:40} {micros:8.0f} us CPU per request (best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
