"""The submit and worker figures on RQ 3 beside RQ 2.12, in one run (issue #16).

    .venv/bin/python -m bench.rq_versions [--rounds 3] [--duration 3] [--rq2-python .venv-rq2/bin/python]

gql-jobs supports two RQ majors; this measures what each costs us. It runs `bench.run`'s submit
figure (REST `POST /submit-job`, `submitJob`, `submitJobs`, raw RQ `enqueue`/`enqueue_many`, on the
1-process API) and its worker drain figure (`rq worker -S json` vs `gql-jobs worker`, fork and
pool), one round at a time, alternating between the two virtualenvs (`--rq3-python`, by default
this interpreter, and `--rq2-python`), so drift in machine load spreads over both. Each round is a
child process of its own (`--one-round`) with its own redis-server and API; figures are medians
over rounds with min and max. Output: a table on stdout and bench/results/rq-versions-<date>.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.processes import ROOT
from bench.run import RESULTS_DIR, Bench, parse_options, say
from bench.stack import Stack

#: The figures compared, by (figure, key, field) in a one-round document.
SUBMIT_KEYS = ("rest_submit|ours-1p", "gql_submit|ours-1p", "gql_submit_batch|ours-1p")
RAW_KEYS = ("enqueue", "enqueue_many")
DRAIN_KEYS = ("rq", "gql", "rq-pool", "gql-pool")


def one_round(duration: float, concurrency: str, output: Path) -> None:
    """One round of the submit and drain figures on this interpreter's RQ, as JSON to `output`."""
    import rq  # noqa: PLC0415 (the child's own RQ)

    options = parse_options(
        ["--rounds", "1", "--duration", str(duration), "--concurrency", concurrency, "--processes", "1"]
    )
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="gql-jobs-bench-rq-") as tmp,
        concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool,
    ):
        stack = Stack(Path(tmp))
        try:
            stack.start_redis()
            api = stack.start_api("ours", 1)
            stack.wait_ready(api)
            bench = Bench(stack, options, pool)
            figures = {"submit": bench.figure_submit(), "drain": bench.figure_drain()}
        finally:
            stack.stop_all()
    output.write_text(json.dumps({"rq": rq.__version__, "figures": figures}))


def _median(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": min(values), "max": max(values)}


def _figures(document: dict[str, Any], concurrencies: Sequence[int]) -> dict[str, float]:
    """The compared numbers of one round, flat: name -> jobs/s."""
    figures = document["figures"]
    found: dict[str, float] = {}
    for key in SUBMIT_KEYS:
        for c in concurrencies:
            found[f"{key}|c{c}"] = figures["submit"]["scenarios"][f"{key}|c{c}"]["jobs_per_s"]["median"]
    for key in RAW_KEYS:
        found[f"raw {key}"] = figures["submit"]["raw_rq"][key]["jobs_per_s"]["median"]
    for key in DRAIN_KEYS:
        found[f"drain {figures['drain'][key]['label']}"] = figures["drain"][key]["jobs_per_s"]["median"]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rq_versions", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load measurement")
    parser.add_argument("--concurrency", default="16", help="comma-separated submit concurrencies")
    parser.add_argument("--rq3-python", default=sys.executable)
    parser.add_argument("--rq2-python", default=str(ROOT / ".venv-rq2" / "bin" / "python"))
    parser.add_argument("--output", type=Path)
    parser.add_argument("--one-round", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_round:
        one_round(args.duration, args.concurrency, args.one_round)
        return 0
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    pythons = {"rq3": args.rq3_python, "rq2": args.rq2_python}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in pythons}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="gql-jobs-rq-versions-") as tmp:
        for number in range(1, args.rounds + 1):
            for name, python in pythons.items():
                out = Path(tmp) / f"{name}-{number}.json"
                say(f"== round {number}: {name} ({python})")
                argv_child = [python, "-m", "bench.rq_versions", "--one-round", str(out)]
                argv_child += ["--duration", str(args.duration), "--concurrency", args.concurrency]
                subprocess.run(argv_child, cwd=ROOT, check=True, timeout=1800)
                document = json.loads(out.read_text())
                versions[name] = document["rq"]
                rounds[name].append(_figures(document, concurrencies))
    summary = {
        name: {figure: _median([r[figure] for r in found]) for figure in found[0]}
        for name, found in rounds.items()
    }
    say(
        f"\n{'figure (jobs/s, median of ' + str(args.rounds) + ')':58} {'RQ ' + versions['rq3']:>12} "
        f"{'RQ ' + versions['rq2']:>12} {'3 / 2':>7}"
    )
    for figure, rq3 in summary["rq3"].items():
        rq2 = summary["rq2"][figure]
        say(f"{figure:58} {rq3['median']:>12} {rq2['median']:>12} {rq3['median'] / rq2['median']:>7.2f}")
    stem = datetime.now(UTC).date().isoformat()
    output = args.output or RESULTS_DIR / f"rq-versions-{stem}.json"
    output.write_text(
        json.dumps(
            {
                "benchmark": "gql-jobs rq versions",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "rq": versions,
                "options": {"rounds": args.rounds, "duration": args.duration, "concurrency": concurrencies},
                "summary": summary,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    say(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
