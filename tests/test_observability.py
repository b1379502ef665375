"""Metrics, request ids and structured logs."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from graphql import OperationType
from rq import Queue, SimpleWorker

from gql_jobs.app import create_app
from gql_jobs.constants import OTHER
from gql_jobs.dev import free_port
from gql_jobs.graphql.schema import build_schema
from gql_jobs.observability import CONTINUATION, RequestIdFilter, logging_config
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.tasks import TaskRegistry, task_modules
from gql_jobs.worker.job import EventedJob
from tests.conftest import ROOT, make_settings, subprocess_env, wait_for

pytestmark = pytest.mark.integration


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_submissions_and_a_real_jobs_outcome(
    client: TestClient, drain: Callable[..., None]
) -> None:
    before = client.get("/metrics").text
    client.post("/submit-job", json={"task": "echo", "payload": {}})
    client.post("/graphql", json={"query": 'mutation { submitJob(input: {task: "fail"}) { __typename } }'})
    drain()
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return sample(text, name, **labels) - sample(before, name, **labels) == by

    assert grew("gql_jobs_requests_total", transport="rest", operation="/submit-job", outcome="ok")
    assert grew("gql_jobs_requests_total", transport="graphql", operation="mutation.submitJob", outcome="ok")
    assert grew("gql_jobs_jobs_submitted_total", task="echo")
    assert grew("gql_jobs_job_outcomes_total", task="echo", outcome="finished")
    assert grew("gql_jobs_job_outcomes_total", task="fail", outcome="failed")
    assert sample(text, "gql_jobs_job_duration_seconds_count", task="echo", outcome="finished") >= 1
    assert sample(text, "gql_jobs_queue_jobs", queue="default", status="finished") == 1
    assert sample(text, "gql_jobs_redis_up") == 1


def test_metrics_count_live_workers_and_the_age_of_the_freshest_heartbeat(
    client: TestClient, redis_client: redis.Redis
) -> None:
    text = client.get("/metrics").text
    assert sample(text, "gql_jobs_workers") == 0
    assert "gql_jobs_worker_heartbeat_age_seconds" not in text  # no worker, no age
    worker = SimpleWorker(["default"], connection=redis_client, serializer=SERIALIZER)
    worker.register_birth()  # type: ignore[no-untyped-call]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    redis_client.hset(worker.key, "last_heartbeat", an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    text = client.get("/metrics").text
    assert sample(text, "gql_jobs_workers") == 1
    assert sample(text, "gql_jobs_worker_heartbeat_age_seconds") >= 3600
    worker.register_death()  # type: ignore[no-untyped-call]
    assert sample(client.get("/metrics").text, "gql_jobs_workers") == 0


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_serve_with_several_workers_sums_metrics_and_logs_json(
    tmp_path: Path, worker_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    env = subprocess_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "gql_jobs", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60)
        worker_process()
        body = {"task": "echo", "payload": {}}
        ids = [
            httpx.post(f"{base}/submit-job", json=body, headers={"X-Request-ID": f"r{i}"}).json()["job_id"]
            for i in range(20)
        ]
        wait_for(lambda: all(httpx.get(f"{base}/job-status/{i}").json()["status"] == "finished" for i in ids))
        text = httpx.get(f"{base}/metrics").text
        assert sample(text, "gql_jobs_requests_total", operation="/submit-job", outcome="ok") == 20
        assert sample(text, "gql_jobs_jobs_submitted_total", task="echo") == 20
        assert sample(text, "gql_jobs_job_outcomes_total", task="echo", outcome="finished") == 20
        ide = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert ide.status_code != 200  # the IDE is off under `serve` unless enabled
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
    output = (tmp_path / "serve.log").read_text().splitlines()
    lines = [json.loads(line) for line in output if line.startswith("{")]
    assert lines, "serve logs JSON lines"
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line.get("request_id") == "r3" for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # which add color_message
    assert not [line for line in lines if "color_message" in line]
    assert all(datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0) for line in lines)


def test_json_logs_have_utc_iso_times_and_no_terminal_escapes() -> None:
    stream = io.StringIO()
    config = logging_config("json")
    config["handlers"]["default"]["stream"] = stream
    config["loggers"] = {"uvicorn.error": {"handlers": ["default"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(config)
    # As uvicorn logs its start: the message, and a copy with ANSI colours for its own formatter.
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (7,), None
    )
    record.created = 1767225600.5  # 2026-01-01T00:00:00.5Z
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    logging.getLogger("uvicorn.error").handle(record)
    line = json.loads(stream.getvalue())
    assert line["time"] == "2026-01-01T00:00:00.500+00:00"
    assert line["message"] == "Started server process [7]"
    assert "color_message" not in line and "\x1b" not in stream.getvalue()


def label_values(text: str, name: str, label: str) -> set[str]:
    """The values one label takes across a metric's samples."""
    values = set()
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            values.add(found[label])
    return values


def test_metric_labels_stay_bounded_whatever_clients_send(
    redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    """Made-up root fields, queues and task names (issue #13): every label value is one the
    configuration allows, or `(other)`."""
    settings = make_settings(max_queues=3)
    registry = TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    with TestClient(create_app(settings)) as client:
        for i in range(30):
            for query in (
                f"{{ madeUp{i} }}",
                f'mutation {{ made{i}(task: "echo") {{ id }} }}',
                f'mutation {{ submitJob(input: {{task: "echo", queue: "q{i}"}}) {{ __typename }} }}',
            ):
                client.post("/graphql", json={"query": query})
        for i in range(10):  # a plain RQ client: any queue, any function, any meta
            foreign = Queue(f"foreign{i}", connection=redis_client, serializer=SERIALIZER)
            foreign.enqueue("builtins.abs", -1, meta={"task_name": f"made_up_{i}"})
        Queue("default", connection=redis_client, serializer=SERIALIZER).enqueue(
            "gql_jobs.builtin_tasks.echo", {}
        )
        drain("default", *(f"q{i}" for i in range(30)), *(f"foreign{i}" for i in range(10)))
        text = client.get("/metrics").text

    tasks = label_values(text, "gql_jobs_job_outcomes_total", "task")
    assert tasks <= {*registry.names(), OTHER} and {"echo", OTHER} <= tasks
    assert label_values(text, "gql_jobs_job_duration_seconds_count", "task") == tasks
    assert label_values(text, "gql_jobs_jobs_submitted_total", "task") <= set(registry.names())
    assert sample(text, "gql_jobs_job_outcomes_total", task=OTHER, outcome="finished") == 10

    queues = label_values(text, "gql_jobs_queue_jobs", "queue")
    assert len(queues) == 1 + 3 + 1 and {"default", OTHER} <= queues  # the default, max_queues, the rest
    finished = sum(sample(text, "gql_jobs_queue_jobs", queue=q, status="finished") for q in queues)
    assert finished == 3 + 1 + 10  # nothing lost by folding: q0..q2, the plain echo, the foreign jobs

    schema = build_schema(settings)._schema  # (the counters are this process's: other tests' too)
    meta = ["__typename", "__schema", "__type", OTHER, "fragment"]
    roots = {
        f"{kind}.{field}"
        for kind in ("query", "mutation", "subscription")
        for root_type in [schema.get_root_type(OperationType(kind))]
        for field in [*(root_type.fields if root_type else ()), *meta]
    }
    operations = label_values(text, "gql_jobs_requests_total", "operation")
    graphql = {op for op in operations if not op.startswith("/")}
    assert graphql <= roots | {"invalid"} and {"query.(other)", "mutation.(other)"} <= graphql


# -- text logs cannot be forged ---------------------------------------------------------------------

FORGED = "2026-01-01 00:00:00,000 ERROR gql_jobs.auth [None] admin key accepted"


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """Records of `rq.worker` and `gql_jobs`, formatted by the text format's configured formatter."""
    config = logging_config("text")
    formatter = logging.config.DictConfigurator(config).configure_custom(
        dict(config["formatters"]["default"])
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    loggers = [logging.getLogger(name) for name in ("rq.worker", "gql_jobs.test")]
    saved = [(lg.handlers, lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.handlers, lg.propagate = [handler], False
    yield stream
    for lg, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        lg.handlers, lg.propagate = handlers, propagate
        lg.setLevel(level)


def test_a_job_description_with_newlines_stays_on_one_line_of_the_text_log(
    client: TestClient, redis_client: redis.Redis, text_log: io.StringIO
) -> None:
    description = f"nightly\n{FORGED}\r\x1b[2K{FORGED}\u2028{FORGED}"
    body = {"query": SUBMIT_WITH_DESCRIPTION, "variables": {"description": description}}
    assert client.post("/graphql", json=body).json()["data"]["submitJob"]["job"]["id"]
    worker = SimpleWorker(["default"], connection=redis_client, serializer=SERIALIZER, job_class=EventedJob)
    worker.work(burst=True, logging_level="INFO")

    lines = text_log.getvalue().splitlines()
    assert lines
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) for line in lines)
    started = [line for line in lines if "nightly" in line]
    assert started
    assert f"nightly\\n{FORGED}\\r\\x1b[2K{FORGED}\\u2028{FORGED}" in started[0]


def test_a_traceback_in_the_text_log_cannot_pass_for_a_record(text_log: io.StringIO) -> None:
    log = logging.getLogger("gql_jobs.test")
    try:
        raise ValueError(f"bad input\n{FORGED}")
    except ValueError:
        log.exception("task failed: %s", f"x\n{FORGED}")
    first, *rest = text_log.getvalue().splitlines()
    assert first.endswith(f"task failed: x\\n{FORGED}")
    assert rest
    assert all(line.startswith(CONTINUATION) for line in rest)
    assert any(FORGED in line for line in rest)


SUBMIT_WITH_DESCRIPTION = """mutation ($description: String!) {
  submitJob(input: {task: "echo", description: $description}) { ... on SubmitJobSuccess { job { id } } }
}"""
