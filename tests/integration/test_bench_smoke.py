"""CI smoke runs of the benchmark commands: `python -m bench --quick` completes and writes its JSON;
`python -m bench.inprocess` measures.

It starts its own redis-server, APIs, workers and load generator (wrk if installed, else httpx), so
it checks that the whole harness still works against the current code, not the figures. Each
command starts several processes and measures for a while: on a loaded 2-core CI machine that takes
minutes, so every bound here is a safety net against a hang, several times an idle machine's run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import redis_server_binary

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"submit", "read", "redis_per_op", "cost_growth", "memory", "drain", "subscriptions"}


def run_module(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m module args` in the checkout, without this session's Redis settings; must succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_URL", "RQ_"))}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.integration
@pytest.mark.timeout(660)
def test_quick_bench_runs_and_writes_json(tmp_path: Path) -> None:
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    output = tmp_path / "bench.json"
    # A 3 s load window (the quick default, 0.5 s, is one second of wrk): under load a cold API
    # answered nothing in one second, and "some answers in the window" is all this asserts.
    done = run_module("bench", "--quick", "--duration", "3", "--output", str(output), timeout=600)
    assert "Targets" in done.stdout

    document = json.loads(output.read_text())
    assert {"machine", "options", "loadavg_start", "loadavg_end", "figures", "targets"} <= set(document)
    assert set(document["figures"]) == FIGURES
    figures = document["figures"]
    assert figures["submit"]["raw_rq"]["enqueue_many"]["jobs_per_s"]["median"] > 0
    submits = figures["submit"]["scenarios"]
    assert {"rest_submit|ours-1p|c16", "rest_submit|lesson-1p|c16", "gql_submit|ours-1p|c16"} <= set(submits)
    for scenario in [*submits.values(), *figures["read"].values()]:
        assert scenario["jobs_per_s"]["median"] > 0, scenario["label"]
        assert scenario["failed"] == 0, scenario["label"]
    assert figures["redis_per_op"]["rest_status|ours-1p"]["round_trips_per_call"]["median"] >= 1
    assert len(figures["cost_growth"]) == 2
    assert figures["memory"]["ours"]["bytes_per_job"]["median"] > 0
    assert all(d["jobs_per_s"]["median"] for d in figures["drain"].values())
    assert all(t["result"] in {"PASS", "MISS"} for t in document["targets"])


@pytest.mark.integration
@pytest.mark.timeout(360)
def test_in_process_measurement_runs() -> None:
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    done = run_module(
        "bench.inprocess", "gql_floor", "rest_submit", "--stub", "--requests", "20", "--rounds", "1"
    )
    rows = re.findall(r"^\s+(\S+).*?\s(\d+) us CPU per request", done.stdout, re.MULTILINE)
    assert [name for name, _ in rows] == ["gql_floor", "rest_submit", "rest_submit"]  # the last: stubbed
    assert all(int(micros) > 0 for _, micros in rows)


@pytest.mark.integration
@pytest.mark.timeout(660)
def test_abuse_bench_runs_and_every_attack_is_refused_or_bounded(tmp_path: Path) -> None:
    """The harness of `python -m bench.abuse` works against the current code, and its answers (not
    its figures, which depend on the machine) are the ones the README quotes."""
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    output = tmp_path / "abuse.json"
    run_module("bench.abuse", "--quick", "--output", str(output), timeout=600)
    rows = {row["case"]: row for row in json.loads(output.read_text())}
    answers = {case: row.get("answer") for case, row in rows.items()}
    assert answers["fragment fan-out, 40 levels"] == "200 QUERY_TOO_COMPLEX"
    assert answers["one huge comment"] == "200 DOCUMENT_TOO_LARGE"
    assert answers["1,000-deep JSON body"] == "400 JSON_TOO_DEEP"
    keys = next(row for case, row in rows.items() if "unique tags" in case)
    assert keys["keys_without_ttl"] == 0
    assert answers["2 x 30-alias jobs(first: 100, status: FAILED) + /readyz"] == "200 QUERY_TOO_COMPLEX"
    assert all(row["readyz"] == 200 for case, row in rows.items() if case.startswith("2 x "))
    frozen = {case: answer for case, answer in answers.items() if case.startswith("Redis frozen")}
    assert len(frozen) == 6
    assert all(
        str(a).startswith("503") or "Unavailable" in str(a) or "UNAVAILABLE" in str(a)
        for a in frozen.values()
    )


@pytest.mark.integration
@pytest.mark.timeout(500)
def test_redis_cost_bench_measures_full_lifecycles(tmp_path: Path) -> None:
    """`python -m bench.redis_cost` (the README's scale-out figures) runs real lifecycles through the
    API and workers and reads Redis' counters: a job's commands are the ones the README names."""
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    output = tmp_path / "redis-cost.json"
    args = ("--jobs", "20", "--rounds", "1", "--idle", "1", "--pings", "100", "--output", str(output))
    run_module("bench.redis_cost", *args, timeout=450)
    document = json.loads(output.read_text())
    for transport in ("rest", "graphql"):
        job = document["per_job"][transport]
        assert job["commands"]["median"] > 12 + 4  # more than the submission and the read alone
        assert job["redis_cpu_usec"]["median"] > 0 and job["command_usec"]["median"] > 0
        # One submission (a MULTI/EXEC with its EVAL), one dequeue, one status read (HGETALL) per job.
        names = job["commands_by_name"]
        assert names["rpush"] == names["blmove"] == 1
        assert 1 <= names["eval"] <= 2  # ours; RQ 3's worker sends one more per job
        assert names["hgetall"] >= 1
        assert document["model"][transport]["jobs_per_s_per_primary"] > 0
    assert document["ping_calibration"]["commands_by_name"]["ping"] == 1


@pytest.mark.integration
@pytest.mark.timeout(500)
def test_servers_bench_runs_every_scenario_against_real_servers(tmp_path: Path) -> None:
    """`python -m bench.servers` (the side-by-side figures of issue #20) starts every server, loads
    each scenario and writes its JSON: every scenario answered, none failed (no speed asserted)."""
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    from bench.servers import SCENARIOS  # here: only this test needs the bench

    output = tmp_path / "servers.json"
    # Every scenario, not only --quick's few; 2 s windows (one second of wrk may see no answer
    # from a server still warming up on a loaded machine), small stores.
    args = ("--quick", "--duration", "2", "--jobs", "100", "--distinct", "500", "--output", str(output))
    scenarios = [arg for name in SCENARIOS for arg in ("--scenario", name)]
    run_module("bench.servers", *args, *scenarios, timeout=450)
    document = json.loads(output.read_text())
    assert {"when", "loadavg_start", "loadavg_end", "versions", "figures", "ratios"} <= set(document)
    figures = document["figures"]["c16"]
    assert set(figures) == set(SCENARIOS)
    for name, figure in figures.items():
        assert figure["ok"] > 0, name
        assert figure["failed"] == 0, (name, figure["rounds"][0]["first_error"])
        assert figure["server_cpu_us_per_request"]["median"] > 0, name
    assert document["ratios"]["c16"]["page of 50: ours / floor"]["cpu"] is not None


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_ab_servers_bench_serves_two_builds_and_the_floor(tmp_path: Path) -> None:
    """`python -m bench.ab_servers` serves a build from another checkout (this one, here) beside
    this one and the floor, and writes every figure of every round (no speed asserted)."""
    if redis_server_binary() is None:
        pytest.skip("no redis-server binary")
    output = tmp_path / "ab.json"
    run_module("bench.ab_servers", str(ROOT), "--rounds", "1", "--duration", "1", "--output", str(output))
    document = json.loads(output.read_text())
    builds, operations = ("before", "after", "floor"), ("job(id)", "submitJob")
    assert set(document["medians"]) == {f"{b}: {o}" for b in builds for o in operations}
    assert all(value > 0 for value in document["medians"].values())
