"""OpenTelemetry tracing (`gql_jobs.tracing`): off by default, one trace from submission to result.

The API runs in-process with an in-memory exporter; the job runs in a real RQ worker, either in
this process (a `SimpleWorker` with our worker class) or as `gql-jobs worker --burst` in a
subprocess exporting to stdout (`OTEL_TRACES_EXPORTER=console`), which also proves that a forked
work horse exports its spans before RQ's `os._exit`.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from rq import SimpleWorker

from gql_jobs import tracing
from gql_jobs.app import create_app
from gql_jobs.constants import META_TRACEPARENT
from gql_jobs.graphql.schema import build_schema
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.worker.worker import GqlJobsWorker
from tests.conftest import run_cli, subprocess_env
from tests.graphql.test_incremental import APOLLO_INCREMENTAL, DEFERRED, parts
from tests.graphql_helpers import SUBMIT, submit
from tests.integration.test_live import follow, states

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"


class InProcessWorker(SimpleWorker, GqlJobsWorker):
    """`gql-jobs worker`'s class, running jobs in this process (SimpleWorker first: no work horse,
    on RQ 2.12 too; mypy runs on the newest leg, where the two `get_heartbeat_ttl`s agree)."""


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, into memory, for one test."""
    exporter = InMemorySpanExporter()
    assert tracing.start(tracing.API_SERVICE, exporter=exporter)
    yield exporter
    tracing.stop()


@pytest.fixture
def traced_client(
    spans: InMemorySpanExporter, settings: Settings, service: JobService
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, service)) as test_client:
        yield test_client


def named(exported: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in exported if span.name == name]
    assert len(found) == 1, [span.name for span in exported]
    return found[0]


# -- on or off ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, None),
        ({ENDPOINT: "http://collector:4317"}, ENDPOINT),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "none", ENDPOINT: "http://collector:4317"}, None),
        ({"OTEL_SDK_DISABLED": "true", ENDPOINT: "http://collector:4317"}, None),
        ({"OTEL_SERVICE_NAME": "api"}, None),
    ],
)
def test_tracing_is_on_only_when_otel_variables_ask_for_an_exporter(
    environ: dict[str, str], variable: str | None
) -> None:
    assert tracing.requested(environ) == variable


def test_otlp_follows_the_sdks_protocol_variables() -> None:
    assert tracing.exporter_names({}) == ["otlp_proto_grpc"]
    assert tracing.exporter_names({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}) == ["otlp_proto_http"]
    both = {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}
    assert tracing.exporter_names(both) == ["otlp_proto_http", "console"]
    assert tracing.problem({ENDPOINT: "http://collector:4317"}) is None  # the extra is installed here


@pytest.mark.parametrize("missing", ["the sdk", "opentelemetry itself"])
def test_tracing_asked_for_without_the_extra_is_one_line_naming_both(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    def find_spec(name: str, *args: object) -> None:
        if missing == "the sdk":
            return None
        raise ModuleNotFoundError(f"No module named {name.partition('.')[0]!r}")

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    problem = tracing.problem({ENDPOINT: "http://collector:4317"})
    assert problem == f"{ENDPOINT} is set but OpenTelemetry is not installed: pip install 'gql-jobs[otel]'"


@pytest.mark.parametrize("command", [("worker", "--burst"), ("serve",)])
def test_an_exporter_that_is_not_installed_stops_the_start_with_one_line(command: tuple[str, ...]) -> None:
    done = run_cli(*command, env=subprocess_env(OTEL_TRACES_EXPORTER="zipkin"))
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"gql-jobs {command[0]}: OTEL_TRACES_EXPORTER: no installed exporter 'zipkin'")


def test_without_tracing_nothing_is_added(settings: Settings, service: JobService) -> None:
    assert not tracing.enabled()
    assert tracing.graphql_extensions() == []
    schema = build_schema(settings)
    assert not any("Tracing" in getattr(ext, "__name__", "") for ext in schema.extensions)
    app = create_app(settings, service)
    assert not any("OpenTelemetry" in m.cls.__name__ for m in app.user_middleware)  # type: ignore[attr-defined]


def test_without_tracing_fastapi_does_not_look_for_providers_per_request(
    settings: Settings, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's own OpenTelemetry support (newer releases) asked for the global providers on
    every request; ours turns it off while tracing is off (on FastAPI without it: nothing to do)."""
    asked: list[str] = []
    real = trace.get_tracer_provider

    def counted() -> trace.TracerProvider:
        asked.append("tracer")
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    with TestClient(create_app(settings, service)) as client:
        assert client.get("/healthz").status_code == 200
    assert asked == []
    if "telemetry" in inspect.signature(FastAPI).parameters:  # the probe itself sees FastAPI's asking
        bare = FastAPI()
        bare.get("/")(lambda: {})
        with TestClient(bare) as client:
            client.get("/")
        assert asked


# -- one trace ----------------------------------------------------------------------------------


def test_submit_and_run_spans_share_one_trace(
    traced_client: TestClient, spans: InMemorySpanExporter, redis_client: redis.Redis
) -> None:
    job = submit(traced_client, "add", payload={"a": 1, "b": 2})
    api_spans = spans.get_finished_spans()
    http = next(s for s in api_spans if s.kind == SpanKind.SERVER and _attribute(s, "http.route"))
    operation = named(api_spans, "mutation Submit")
    send = named(api_spans, "send default")
    stored = json.loads(redis_client.hget(f"rq:job:{job['id']}", "meta") or b"{}")
    assert stored[META_TRACEPARENT].startswith(f"00-{_hex_ids(send)}-")  # then the trace flags

    InProcessWorker(["default"], connection=redis_client).work(burst=True, logging_level="WARNING")

    exported = spans.get_finished_spans()
    wait, process = named(exported, "wait default"), named(exported, "process default")
    assert {_ids(s)[0] for s in (http, operation, send, wait, process)} == {_ids(http)[0]}
    assert _parent(operation) == _ids(http)[1]
    assert (_attribute(http, "http.request.method"), _attribute(http, "http.route")) == ("POST", "/graphql")
    assert (send.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert _parent(process) == _parent(wait) == _ids(send)[1]
    assert [link.context.span_id for link in process.links] == [_ids(send)[1]]
    assert _messaging(send) == ("rq", "send", "default", job["id"])
    assert _messaging(process) == ("rq", "process", "default", job["id"])
    assert _attribute(operation, "graphql.operation.type") == "mutation"
    assert _attribute(operation, "graphql.operation.name") == "Submit"
    assert _attribute(operation, "query") is None  # documents and arguments carry clients' payloads
    assert _attribute(process, "gql_jobs.job.outcome") == "finished"
    assert _attribute(process, tracing.QUEUE_WAIT_ATTRIBUTE) >= 0
    assert wait.start_time is not None and wait.end_time is not None and wait.start_time <= wait.end_time
    redis_commands = [s for s in exported if _attribute(s, "db.system.name") == "redis"]
    assert any(_ids(s)[0] == _ids(http)[0] for s in redis_commands)
    [write] = [s for s in redis_commands if _parent(s) == _ids(send)[1]]  # the submission's own write
    assert (write.name, write.kind, _attribute(write, "db.operation.name")) == (
        "EVAL",
        SpanKind.CLIENT,
        "EVAL",
    )


CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-b7ad6b7169203331-01"


def _submitted_with_traceparent(client: TestClient, redis_client: redis.Redis) -> str:
    """The trace id of the `traceparent` a job got when its client sent one of its own."""
    response = client.post(
        "/graphql",
        json={"query": SUBMIT, "variables": {"input": {"task": "echo"}}},
        headers={"traceparent": CLIENT_TRACEPARENT},
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["data"]["submitJob"]["job"]["id"]
    stored = json.loads(redis_client.hget(f"rq:job:{job_id}", "meta") or b"{}")
    return str(stored[META_TRACEPARENT].split("-")[1])


def test_a_clients_traceparent_is_continued_unless_propagators_are_none(
    spans: InMemorySpanExporter, settings: Settings, service: JobService, redis_client: redis.Redis
) -> None:
    """The API continues a caller's W3C context (the SDK's default propagators): a client picks its
    trace id. `OTEL_PROPAGATORS=none` (an empty global propagator) ignores it; that made every
    traced request a 500 (its extract gave `None`, attached as the context), and now jobs still
    carry the API's own trace."""
    with TestClient(create_app(settings, service)) as client:
        assert _submitted_with_traceparent(client, redis_client) == CLIENT_TRACE
    configured = propagate.get_global_textmap()
    tracing.stop()
    propagate.set_global_textmap(CompositePropagator([]))  # what OTEL_PROPAGATORS=none makes
    try:
        assert tracing.start(tracing.API_SERVICE, exporter=spans)
        with TestClient(create_app(settings, service)) as client:
            own = _submitted_with_traceparent(client, redis_client)
    finally:
        propagate.set_global_textmap(configured)
    send = [span for span in spans.get_finished_spans() if span.name == "send default"][-1]
    assert own != CLIENT_TRACE
    assert own == f"{_ids(send)[0]:032x}"


@pytest.mark.parametrize("pool", [(), ("--pool", "2")], ids=["worker", "pool"])
def test_a_forked_work_horse_continues_the_trace_and_exports_before_it_exits(
    traced_client: TestClient, spans: InMemorySpanExporter, pool: tuple[str, ...]
) -> None:
    job = submit(traced_client, "echo", payload={"k": "v"})
    send = named(spans.get_finished_spans(), "send default")

    done = run_cli("worker", "--burst", *pool, env=subprocess_env(OTEL_TRACES_EXPORTER="console"))
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    worker_spans = _console_spans(done.stdout.decode())
    process = next(s for s in worker_spans if s["name"] == "process default")
    assert process["kind"] == "SpanKind.CONSUMER"
    trace_id, span_id = _ids(send)
    assert process["context"]["trace_id"] == f"0x{trace_id:032x}"
    assert process["parent_id"] == f"0x{span_id:016x}"
    assert process["attributes"]["messaging.message.id"] == job["id"]
    assert process["resource"]["attributes"]["service.name"] == tracing.WORKER_SERVICE


def test_a_failed_job_ends_its_span_in_error(
    traced_client: TestClient, spans: InMemorySpanExporter, redis_client: redis.Redis
) -> None:
    submit(traced_client, "fail")
    InProcessWorker(["default"], connection=redis_client).work(burst=True, logging_level="CRITICAL")
    process = named(spans.get_finished_spans(), "process default")
    assert _attribute(process, "gql_jobs.job.outcome") == "failed"
    assert not process.status.is_ok


def _messaging(span: ReadableSpan) -> tuple[Any, ...]:
    names = ("system", "operation.type", "destination.name", "message.id")
    return tuple(_attribute(span, f"messaging.{name}") for name in names)


def _ids(span: ReadableSpan) -> tuple[int, int]:
    assert span.context is not None
    return span.context.trace_id, span.context.span_id


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _attribute(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


def _hex_ids(span: ReadableSpan) -> str:
    """`<trace id>-<span id>` as a `traceparent` writes them."""
    trace_id, span_id = _ids(span)
    return f"{trace_id:032x}-{span_id:016x}"


def _console_spans(text: str) -> list[dict[str, Any]]:
    """The spans `ConsoleSpanExporter` printed: JSON objects one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := text.find("{", at)) != -1:
        span, at = decoder.raw_decode(text, start)
        found.append(span)
    return found


def test_a_subscription_is_traced_and_still_streams(
    traced_client: TestClient, spans: InMemorySpanExporter, drain: Callable[..., None]
) -> None:
    job = submit(traced_client, "echo", payload={"x": 1})
    drain()
    payloads, end = follow(traced_client, job["id"])
    assert [s["status"] for s in states(payloads)] == ["FINISHED"]
    assert end["type"] == "complete"
    operation = next(s for s in spans.get_finished_spans() if s.name.startswith("subscription"))
    assert _attribute(operation, "graphql.operation.type") == "subscription"


def test_a_deferred_query_is_traced_and_still_arrives_in_parts(
    traced_client: TestClient, spans: InMemorySpanExporter
) -> None:
    response = traced_client.post(
        "/graphql", json={"query": DEFERRED}, headers={"accept": APOLLO_INCREMENTAL}
    )
    first, *rest = parts(response)
    assert first["hasNext"] is True and rest[-1]["hasNext"] is False
    operation = named(spans.get_finished_spans(), "query")  # an anonymous query: its type alone
    assert _attribute(operation, "graphql.operation.type") == "query"
