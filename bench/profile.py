"""Profile the API under one benchmark operation with py-spy (where its CPU goes).

    .venv/bin/python -m bench.profile gql_job [--seconds 10] [--concurrency 16] [--output FILE]

Starts a private redis-server and `gql-jobs serve` (one process), makes finished jobs for reads,
warms up, then loads the operation (an `Op` of bench/run.py: rest_submit, gql_submit,
gql_submit_batch, rest_status, gql_job, gql_jobs, gql_jobs_filtered) while `py-spy record --gil`
samples the API: only the thread holding the GIL is sampled, so the shares are of the CPU the
Python code used, not of threads waiting. Writes the collapsed stacks (flame graph input:
`py-spy`'s raw format) and prints the hottest frames, inclusive and self, with file:line.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import workload
from bench.loadgen import LoadSpec, available_client, run_load
from bench.run import OPS, request_of
from bench.stack import Stack


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("no py-spy next to this Python or on PATH (pip install py-spy)")
    return found


#: Frames of the server's plumbing, on nearly every stack: left out of the inclusive list.
PLUMBING: tuple[str, ...] = ("<frozen runpy>", "uvicorn/", "asyncio/", "starlette/", "fastapi/", "anyio/")
PLUMBING += ("threading.py", "contextlib.py", "gql_jobs/__main__.py", "gql_jobs/cli.py")
PLUMBING += ("gql_jobs/web/requests.py", "gql_jobs/web/limits.py")


def hottest(collapsed: Path, top: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Frames by share of samples: inclusive (on the stack; the server's plumbing left out) and
    self (at the top of the stack)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            if not any(part in frame for part in PLUMBING):
                inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return [], []
    return (
        [(f, 100 * n / total) for f, n in inclusive.most_common(top)],
        [(f, 100 * n / total) for f, n in own.most_common(top)],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("op", choices=sorted(OPS))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--output", type=Path, help="collapsed stacks (default: a temporary file)")
    args = parser.parse_args(argv)
    client = available_client(args.loadgen)
    op = OPS[args.op]
    output = args.output or Path(tempfile.mkstemp(prefix=f"profile-{op.name}-", suffix=".txt")[1])
    with tempfile.TemporaryDirectory(prefix="gql-jobs-profile-") as tmp:
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            api = stack.start_api("ours", 1)
            stack.wait_ready(api)
            ids = workload.fill_service(stack.redis_url, 500)
            workload.drain(stack.redis_url, evented=True)
            method, paths, bodies = request_of(op, ids)

            def spec(seconds: float) -> LoadSpec:
                return LoadSpec(
                    api.base_url, paths, method, bodies, args.concurrency, seconds, 10**8, op.check
                )

            run_load(spec(2), client)  # warm-up
            argv_spy = [py_spy(), "record", "--gil", "--nonblocking", "-r", "200", "-f", "raw"]
            argv_spy += ["-p", str(api.proc.process.pid), "-d", str(args.seconds), "-o", str(output)]
            spy = subprocess.Popen(argv_spy, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            result = run_load(spec(args.seconds), client)
            _, errors = spy.communicate(timeout=args.seconds + 30)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed: {errors.decode(errors='replace')[-500:]}")
        finally:
            stack.stop_all()
    print(f"{op.label} at c{args.concurrency}: {result.rps} req/s, p50 {result.p50_ms} ms ({client})")
    inclusive, own = hottest(output, args.top)
    print("\ninclusive (share of GIL-holding samples)")
    for frame, share in inclusive:
        print(f"  {share:5.1f}%  {frame}")
    print("\nself")
    for frame, share in own:
        print(f"  {share:5.1f}%  {frame}")
    print(f"\ncollapsed stacks: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
