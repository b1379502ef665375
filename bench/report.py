"""Targets, tables and the JSON file of a `python -m bench` run (see bench/run.py)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None  # ours
    baseline: float | None
    threshold: float
    at_least: bool  # ratio >= threshold (else ratio <= threshold)
    unit: str

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline

    @property
    def passed(self) -> bool:
        ratio = self.ratio
        if ratio is None:
            return False
        return ratio >= self.threshold if self.at_least else ratio <= self.threshold

    def as_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "name": self.name,
            "measured": self.measured,
            "baseline": self.baseline,
            "unit": self.unit,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "threshold": f"{'>=' if self.at_least else '<='} {self.threshold}",
            "result": "PASS" if self.passed else "MISS",
        }


def _median(table: dict[str, Any], key: str, field: str = "jobs_per_s") -> float | None:
    entry = table.get(key)
    if entry is None:
        return None
    value = entry[field]["median"]
    return float(value) if value is not None else None


def targets(document: dict[str, Any]) -> list[Target]:
    """The issue's targets, on the 1-process APIs, at every submit concurrency measured."""
    figures = document["figures"]
    submit = figures["submit"]["scenarios"]
    raw = figures["submit"]["raw_rq"]
    read = figures["read"]
    found: list[Target] = []
    for c in document["options"]["concurrencies"]:
        lesson_rest = _median(submit, f"rest_submit|lesson-1p|c{c}")
        found += [
            Target(
                f"REST POST /submit-job vs lesson's (c{c})",
                _median(submit, f"rest_submit|ours-1p|c{c}"),
                lesson_rest,
                1.5,
                True,
                "jobs/s",
            ),
            Target(
                f"GraphQL submitJob vs lesson's REST (c{c})",
                _median(submit, f"gql_submit|ours-1p|c{c}"),
                lesson_rest,
                1.0,
                True,
                "jobs/s",
            ),
            Target(
                f"submitJobs (100/call) vs raw enqueue_many (c{c})",
                _median(submit, f"gql_submit_batch|ours-1p|c{c}"),
                _median(raw, "enqueue_many"),
                0.5,
                True,
                "jobs/s",
            ),
        ]
    found.append(
        Target(
            "job(id) vs lesson's GET /job-status (c16)",
            _median(read, "gql_job|ours-1p|c16", "requests_per_s"),
            _median(read, "rest_status|lesson-1p|c16", "requests_per_s"),
            1.0,
            True,
            "req/s",
        )
    )
    growth = figures["cost_growth"]
    sizes = sorted(growth, key=int)
    if len(sizes) >= 2:
        found.append(
            Target(
                f"jobs(first: 50) p50 at {int(sizes[-1]):,} vs {int(sizes[0]):,} jobs",
                _median(growth, sizes[-1], "p50_ms"),
                _median(growth, sizes[0], "p50_ms"),
                1.2,
                False,
                "ms",
            )
        )
    drain = figures["drain"]
    found += [
        Target(
            "gql-jobs worker vs rq worker (fork)",
            _median(drain, "gql"),
            _median(drain, "rq"),
            0.9,
            True,
            "jobs/s",
        ),
        Target(
            "gql-jobs worker --pool 2 vs rq worker-pool -n 2",
            _median(drain, "gql-pool"),
            _median(drain, "rq-pool"),
            0.9,
            True,
            "jobs/s",
        ),
    ]
    memory = figures["memory"]
    found.append(
        Target(
            "Redis memory per finished job vs lesson's",
            _median(memory, "ours", "bytes_per_job"),
            _median(memory, "lesson", "bytes_per_job"),
            1.0,
            False,
            "bytes",
        )
    )
    return found


def other_ratios(document: dict[str, Any]) -> dict[str, float | None]:
    """Ratios that are not targets: the N-process APIs, and how each API scales with processes."""
    figures = document["figures"]
    submit = figures["submit"]["scenarios"]
    read = figures["read"]
    n = document["options"]["processes"]
    found: dict[str, float | None] = {}

    def ratio(name: str, top: float | None, bottom: float | None) -> None:
        found[name] = round(top / bottom, 3) if top is not None and bottom else None

    for c in document["options"]["concurrencies"]:
        for p in sorted({1, n}):
            lesson = _median(submit, f"rest_submit|lesson-{p}p|c{c}")
            ratio(
                f"x{p} c{c} REST submit vs lesson's", _median(submit, f"rest_submit|ours-{p}p|c{c}"), lesson
            )
            ratio(
                f"x{p} c{c} submitJob vs lesson's REST", _median(submit, f"gql_submit|ours-{p}p|c{c}"), lesson
            )
        if n > 1:
            for kind in ("ours", "lesson"):
                ratio(
                    f"c{c} REST submit, {kind} x{n} vs x1",
                    _median(submit, f"rest_submit|{kind}-{n}p|c{c}"),
                    _median(submit, f"rest_submit|{kind}-1p|c{c}"),
                )
    for p in sorted({1, n}):
        lesson_status = _median(read, f"rest_status|lesson-{p}p|c16", "requests_per_s")
        ratio(
            f"x{p} job(id) vs lesson's GET",
            _median(read, f"gql_job|ours-{p}p|c16", "requests_per_s"),
            lesson_status,
        )
        ratio(
            f"x{p} GET /job-status vs lesson's",
            _median(read, f"rest_status|ours-{p}p|c16", "requests_per_s"),
            lesson_status,
        )
        # The ceiling of any GraphQL target against the lesson's REST: Strawberry with no work.
        ratio(
            f"x{p} {{ __typename }} (GraphQL floor) vs lesson's GET",
            _median(read, f"gql_floor|ours-{p}p|c16", "requests_per_s"),
            lesson_status,
        )
    return found


# -- printing -------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cell(spread: dict[str, Any], digits: int = 1) -> str:
    if spread["median"] is None:
        return "-"
    return f"{_num(spread['median'], digits)} [{_num(spread['min'], digits)}-{_num(spread['max'], digits)}]"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _load_rows(table: dict[str, Any], rate: str) -> list[list[str]]:
    ordered = sorted(
        table.values(), key=lambda s: (s["concurrency"], s["processes"], s["api_kind"] != "lesson")
    )
    return [
        [
            s["label"],
            str(s["concurrency"]),
            _cell(s[rate]),
            _num(s["p50_ms"]["median"], 1),
            _num(s["p99_ms"]["median"], 1),
            _num(s["api_cpu_pct"]["median"], 0),
            _num(s["loadavg_1m"]["median"], 2),
            str(s["failed"]),
        ]
        for s in ordered
    ]


def print_report(document: dict[str, Any]) -> None:
    figures = document["figures"]
    machine = document["machine"]
    options = document["options"]
    print(
        f"\ngql-jobs bench, {document['date']}: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"redis {machine['redis_version']}, load generator {machine['loadgen_version']}; "
        f"{options['rounds']} round(s) x {options['duration']:g} s; median [min-max] over rounds"
    )
    header = ["", "c", "{rate} median [min-max]", "p50 ms", "p99 ms", "API CPU%", "load1", "failed"]
    raw_rows = [
        [
            r["label"] + " (1 process)",
            "1",
            _cell(r["jobs_per_s"]),
            _num(r["p50_ms"]["median"], 1),
            _num(r["p99_ms"]["median"], 1),
            "-",
            "-",
            "0",
        ]
        for r in figures["submit"]["raw_rq"].values()
    ]
    jobs_header = [h.format(rate="jobs/s") for h in header]
    print_table("1. Submit", jobs_header, raw_rows + _load_rows(figures["submit"]["scenarios"], "jobs_per_s"))
    print_table(
        "2. Read (finished jobs)",
        [h.format(rate="req/s") for h in header],
        _load_rows(figures["read"], "requests_per_s"),
    )
    print_table(
        "3. Cost growth: jobs(first: 50), one client, gql-jobs x1",
        ["jobs stored", "p50 ms", "p99 ms", "commands/page", "round trips/page", "fill jobs/s"],
        [
            [
                f"{int(size):,}",
                _cell(g["p50_ms"], 2),
                _cell(g["p99_ms"], 2),
                _num(g["commands_per_page"]),
                _num(g["round_trips_per_page"]),
                _num(g["fill_jobs_per_s"], 0),
            ]
            for size, g in sorted(figures["cost_growth"].items(), key=lambda item: int(item[0]))
        ],
    )
    print_table(
        "4. Redis per operation (sequential requests; round trips = socket reads)",
        ["operation", "commands/call", "round trips/call", "commands/job", "round trips/job"],
        [
            [
                o["label"],
                _num(o["commands_per_call"]["median"]),
                _num(o["round_trips_per_call"]["median"], 2),
                _num(o["commands_per_job"]["median"]),
                _num(o["round_trips_per_job"]["median"], 3),
            ]
            for o in figures["redis_per_op"].values()
        ],
    )
    memory = figures["memory"]
    ours, lesson = memory["ours"], memory["lesson"]
    parts = list(dict.fromkeys([*ours["breakdown_bytes_per_job"], *lesson["breakdown_bytes_per_job"]]))
    print_table(
        f"5. Redis memory per finished job ({options['memory_jobs']:,} jobs; MEMORY USAGE breakdown below)",
        ["bytes per job", "gql-jobs", "lesson"],
        [
            [
                "used_memory delta, median [min-max]",
                _cell(ours["bytes_per_job"], 0),
                _cell(lesson["bytes_per_job"], 0),
            ],
            *[
                [
                    f"  {part}",
                    _num(ours["breakdown_bytes_per_job"].get(part), 0),
                    _num(lesson["breakdown_bytes_per_job"].get(part), 0),
                ]
                for part in parts
            ],
        ],
    )
    print_table(
        f"6. Worker drain rate ({options['drain_jobs']} no-op jobs)",
        ["worker", "jobs/s median [min-max]"],
        [[d["label"], _cell(d["jobs_per_s"])] for d in figures["drain"].values()],
    )
    subs = figures.get("subscriptions")
    if subs:
        print_table(
            "7. Subscription latency, worker endedAt -> subscriber (ms)",
            ["scenario", "p50 median [min-max]", "p99 median [min-max]"],
            [
                [
                    subs["description"],
                    _cell(subs["finished_p50_ms_across_rounds"]),
                    _cell(subs["finished_p99_ms_across_rounds"]),
                ]
            ],
        )
    print_table(
        "Targets (1-process APIs; ratio of medians measured in this run)",
        ["target", "ours", "baseline", "ratio", "needed", "result"],
        [
            [
                t["name"],
                _num(t["measured"]),
                _num(t["baseline"]),
                _num(t["ratio"], 3),
                t["threshold"],
                t["result"],
            ]
            for t in document["targets"]
        ],
    )
    others = ", ".join(f"{k}: {_num(v, 2)}" for k, v in document["other_ratios"].items())
    print(f"\nOther ratios: {others}")
    print(
        f"\nload average {document['loadavg_start']} -> {document['loadavg_end']}; "
        f"{document['duration_s']} s in all"
    )


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)
