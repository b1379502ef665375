"""Two builds of gql-jobs served side by side, with the floor, in alternating rounds (issue #20).

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.ab_servers /tmp/before [--rounds 3] [--duration 4] [--concurrency 16]

What a change saves on the server, where `bench.servers` measures one build: `gql-jobs serve`
(one process, no access log) run from the checkout given (its `gql_jobs` first on `PYTHONPATH`,
this virtualenv's libraries) and from this one, and the bare-ASGI floor (`bench/floor_app.py`),
against one private redis-server holding 1,000 finished jobs. Each round loads each server in
turn with wrk (httpx where wrk is not installed): `job(id)` with variables (500 stored ids) and
`submitJob` with variables (the floor: its read and its submit). Figures are the server process's
CPU seconds per answered request, in microseconds; the medians of the rounds are printed and, with
`--output`, written as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import workload
from bench.compare import JOB_VARS
from bench.loadgen import LoadSpec, available_client, run_load
from bench.run import GQL_INPUT, REST_BODY, SUBMIT_ONE, gql
from bench.servers import SERVERS, start_server, wait_ready
from bench.stack import Stack, cpu_seconds


def served(stack: Stack, kind: str, checkout: Path | None = None) -> tuple[str, int]:
    """A server of `bench.servers`' kind (ours from `checkout`'s package, when given), once it
    answers; its base URL and pid."""
    if checkout is not None:
        stack.extra_env["PYTHONPATH"] = str(checkout)  # first on the path: its `gql_jobs`, `bench`
    try:
        server = start_server(stack, SERVERS[kind])
    finally:
        stack.extra_env.pop("PYTHONPATH", None)
    stack.others.append(server.proc)  # both builds of ours share one API name: both are stopped
    wait_ready(server)
    return server.base_url, server.pid


def loads(name: str, base: str, ids: Sequence[str]) -> dict[str, LoadSpec]:
    """What each operation sends to a server: ours over GraphQL, the floor its read and submit."""
    if name == "floor":
        return {
            "job(id)": LoadSpec(base, tuple(f"/job/{i}" for i in ids)),
            "submitJob": LoadSpec(base, ("/submit",), "POST", (REST_BODY,)),
        }
    return {
        "job(id)": LoadSpec(base, ("/graphql",), "POST", tuple(gql(JOB_VARS, {"id": i}) for i in ids)),
        "submitJob": LoadSpec(base, ("/graphql",), "POST", (gql(SUBMIT_ONE, {"input": GQL_INPUT}),)),
    }


def measure(
    before: Path, rounds: int, duration: float, concurrency: int, loadgen: str = "auto"
) -> dict[str, list[float]]:
    """Each server's CPU per request of each operation, in every round (SystemExit if a request
    failed: a build answering errors would look cheap)."""
    client = available_client(loadgen)
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="gql-jobs-ab-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            ids = workload.fill_service(stack.redis_url, 1000)[:500]
            workload.drain(stack.redis_url, evented=True)
            servers = {
                "before": served(stack, "ours", before),
                "after": served(stack, "ours"),
                "floor": served(stack, "floor"),
            }
            for round_number in range(1, rounds + 1):
                for name, (base, pid) in servers.items():
                    for operation, load in loads(name, base, ids).items():
                        began = cpu_seconds(pid)
                        result = run_load(replace(load, concurrency=concurrency, duration=duration), client)
                        if result.failed or not result.ok:
                            failed = f"{result.failed} failed, {result.first_error}"
                            raise SystemExit(f"{name} {operation}: {failed}")
                        micros = (cpu_seconds(pid) - began) / max(result.ok, 1) * 1e6
                        figures.setdefault(f"{name}: {operation}", []).append(round(micros, 1))
                        print(f"  [round {round_number}] {name:6} {operation:9} {micros:6.0f} us/req")
        finally:
            stack.stop_all()
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path, help="a checkout of the build to compare with (git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if not (args.before / "gql_jobs" / "__init__.py").is_file():
        raise SystemExit(f"{args.before} is not a checkout of gql-jobs")
    figures = measure(args.before.resolve(), args.rounds, args.duration, args.concurrency, args.loadgen)
    medians = {key: round(statistics.median(values), 1) for key, values in figures.items()}
    for key, value in medians.items():
        print(f"  {key:20} {value:7.0f} us CPU per request (median)")
    for operation in ("job(id)", "submitJob"):
        floor_figure = medians[f"floor: {operation}"]
        print(
            f"  {operation}: before {medians[f'before: {operation}'] / floor_figure:.2f}x, "
            f"after {medians[f'after: {operation}'] / floor_figure:.2f}x its floor"
        )
    if args.output:
        document = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "before": str(args.before),
            "options": {"rounds": args.rounds, "duration": args.duration, "concurrency": args.concurrency},
            "server_cpu_us_per_request": figures,
            "medians": medians,
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
