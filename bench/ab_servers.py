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
from bench.loadgen import LoadSpec, available_client, run_load
from bench.processes import http_ok, wait_until
from bench.run import GQL_INPUT, REST_BODY, ROOT, SUBMIT_ONE, gql
from bench.stack import START_TIMEOUT, Stack, cpu_seconds
from gql_jobs.dev import free_port

JOB_VARS = "query ($id: ID!) { job(id: $id) { id status result error { message } } }"


def start(stack: Stack, name: str, argv: list[str], ready: str) -> tuple[str, int]:
    """A server process of the stack; its base URL and pid once it answers `ready`."""
    port = free_port()
    process = stack.start_process(name, [arg.replace("{port}", str(port)) for arg in argv])
    base = f"http://127.0.0.1:{port}"
    wait_until(name, lambda: http_ok(base + ready), process.process, process.log, START_TIMEOUT)
    return base, process.process.pid


def serve(checkout: Path) -> list[str]:
    """`gql-jobs serve` with `checkout`'s package first on the path (this one's libraries)."""
    argv = ["env", f"PYTHONPATH={checkout}", sys.executable, "-m", "gql_jobs", "serve"]
    return [*argv, "--host", "127.0.0.1", "--port", "{port}", "--workers", "1", "--no-access-log"]


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
            floor = [sys.executable, "-m", "uvicorn", "--factory", "bench.floor_app:create"]
            floor += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
            floor += ["--host", "127.0.0.1", "--port", "{port}"]
            servers = {
                "before": start(stack, "before", serve(before), "/readyz"),
                "after": start(stack, "after", serve(ROOT), "/readyz"),
                "floor": start(
                    stack, "floor", [*floor, "--host", "127.0.0.1", "--port", "{port}"], "/page/1"
                ),
            }
            for round_number in range(1, rounds + 1):
                for name, (base, pid) in servers.items():
                    for operation, load in loads(name, base, ids).items():
                        began = cpu_seconds(pid)
                        result = run_load(replace(load, concurrency=concurrency, duration=duration), client)
                        if result.failed or not result.ok:
                            raise SystemExit(
                                f"{name} {operation}: {result.failed} failed, {result.first_error}"
                            )
                        micros = (cpu_seconds(pid) - began) / max(result.ok, 1) * 1e6
                        figures.setdefault(f"{name}: {operation}", []).append(round(micros, 1))
                        print(
                            f"  [round {round_number}] {name:6} {operation:9} {micros:6.0f} us/req",
                            flush=True,
                        )
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
