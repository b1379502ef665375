"""deploy/grafana/gql-jobs.json and deploy/prometheus/alerts.yml, checked by the tools made for them.

* Alert rules: `promtool check rules` and `promtool test rules alerts.test.yml` (Debian's
  `prometheus` package ships promtool; `.ci/run` installs it, and without it these tests skip).
* The dashboard: every query is valid PromQL (promtool checks them as recording rules, Grafana's
  variables replaced), its structure matches Grafana's own dashboard schema (the TypeScript types
  of the `@grafana/schema` npm package, pinned in clients/, compiled by `tsc --strict`), and every
  panel and query reads the `$datasource` variable.
* Both: every metric they name is in the exposition of a real app after real jobs ran.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker

from gql_jobs.store.rq_format import SERIALIZER
from tests.conftest import ROOT
from tests.node_helpers import CLIENTS, installed_clients

DASHBOARD = ROOT / "deploy" / "grafana" / "gql-jobs.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
#: The alerts issue #19 asks for.
ALERT_NAMES = {
    "GqlJobsRedisDown",
    "GqlJobsQueueBacklogGrowing",
    "GqlJobsJobFailureRatioHigh",
    "GqlJobsNoWorkerHeartbeat",
    "GqlJobsRequestLatencyP99High",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Grafana's variables, as a Prometheus would see them once Grafana replaced them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$job": ".*"}
#: PromQL words that are not metric names.
PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
    | {"offset", "inf", "nan"}
)
TOOL_TIMEOUT = 120


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS` run to its end (skips the test where promtool is not installed)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run(
        [found, *args], cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def alerts() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def alert_rules(alerts: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in alerts["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (loosely parsed: strings, label matchers,
    grouping clauses, ranges, numbers and function names taken out first)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(", "(", text)  # functions and aggregations
    words = re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text)
    return {word for word in words if word.lower() not in PROMQL_WORDS}


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, op) (rate(a_bucket{job=~"$job", x!="y z"}[5m]))) > 1 '
        "and on (op) max without (i) (b) / ignoring(k) c_total offset 5m or vector(1) == bool inf"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}


# -- the alert rules ----------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERT_NAMES)} rules found" in checked.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_and_says_how_bad_it_is(alerts: dict[str, Any]) -> None:
    rules = alert_rules(alerts)
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert tested == ALERT_NAMES


# -- the dashboard ------------------------------------------------------------------------------


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = []
    for number, query in enumerate(dashboard_queries(dashboard)):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a Grafana variable this test does not know in {query}"
        rules.append({"record": f"gql_jobs_dashboard:query_{number}", "expr": expr})
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_panel_and_query_reads_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["datasource"] == DATASOURCE
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert 'job=~"$job"' in target["expr"], panel["title"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


#: Grafana's dashboard types as its JSON holds them: enums as their values, nothing else widened.
JSON_OF_TYPES = """
type Json<T> = T extends string ? `${T}`
  : T extends number ? number
  : T extends boolean ? boolean
  : T extends null | undefined ? T
  : T extends ReadonlyArray<infer U> ? ReadonlyArray<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;
"""


def schema_check(tmp_path: Path, dashboard: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`tsc --strict` over the dashboard as an object literal that `satisfies` Grafana's
    `Dashboard` type (@grafana/schema): unknown fields are excess properties, wrong types fail."""
    installed_clients()
    types = CLIENTS / "node_modules" / "@grafana" / "schema" / "dist" / "types" / "raw" / "dashboard" / "x"
    source = (
        f'import type {{ Dashboard }} from "{types / "types.gen"}";\n{JSON_OF_TYPES}\n'
        f"export const dashboard = {json.dumps(dashboard, indent=2)} satisfies Json<Dashboard>;\n"
    )
    (tmp_path / "dashboard.ts").write_text(source)
    options = {
        "strict": True,
        "noEmit": True,
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
    }
    (tmp_path / "tsconfig.json").write_text(
        json.dumps({"compilerOptions": options, "files": ["dashboard.ts"]})
    )
    return subprocess.run(
        [str(CLIENTS / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )


@pytest.mark.integration
def test_dashboard_matches_grafanas_dashboard_schema(dashboard: dict[str, Any], tmp_path: Path) -> None:
    checked = schema_check(tmp_path, dashboard)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.integration
def test_the_schema_check_rejects_a_misspelt_field_and_a_wrong_type(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    broken = json.loads(json.dumps(dashboard))
    broken["panels"][1]["gridpos"] = broken["panels"][1].pop("gridPos")
    broken["refresh"] = 30
    checked = schema_check(tmp_path, broken)
    assert checked.returncode != 0
    assert "'\"gridpos\"' does not exist" in checked.stdout, checked.stdout
    assert "TS2322: Type 'number' is not assignable to type 'string'" in checked.stdout, checked.stdout


# -- both, against a real exposition --------------------------------------------------------------


@pytest.mark.integration
def test_every_metric_named_in_the_dashboard_and_alerts_is_exposed(
    client: TestClient,
    drain: Callable[..., None],
    redis_client: redis.Redis,
    dashboard: dict[str, Any],
    alerts: dict[str, Any],
) -> None:
    client.post("/submit-job", json={"task": "echo", "payload": {}})
    client.post("/graphql", json={"query": 'mutation { submitJob(input: {task: "fail"}) { __typename } }'})
    drain()
    worker = SimpleWorker(["default"], connection=redis_client, serializer=SERIALIZER)
    worker.register_birth()  # type: ignore[no-untyped-call]  # a live worker: its heartbeat age is exposed
    try:
        text = client.get("/metrics").text
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]
    exposed = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}

    variable_queries = [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    named = {
        "dashboard": set().union(*map(metric_names, dashboard_queries(dashboard))),
        "job variable": set(re.findall(r"label_values\((\w+)", " ".join(variable_queries))),
        "alerts": set().union(*(metric_names(rule["expr"]) for rule in alert_rules(alerts))),
    }
    for where, names in named.items():
        assert names, where
        assert names <= exposed, f"{where} names metrics /metrics does not have: {sorted(names - exposed)}"
    assert {"gql_jobs_workers", "gql_jobs_worker_heartbeat_age_seconds", "gql_jobs_redis_up"} <= named[
        "alerts"
    ]
