"""OpenTelemetry tracing: off unless the standard `OTEL_*` variables ask for it (the `otel` extra).

Tracing is on in a process when `OTEL_TRACES_EXPORTER` names an exporter (not `none`), or an OTLP
endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, exporter
`otlp`), and `OTEL_SDK_DISABLED` is not `true`. Everything else follows the SDK's own variables:
the resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), the sampler (`OTEL_TRACES_SAMPLER`),
the OTLP protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc`, the default, or `http/protobuf`), its
endpoint, headers and timeouts, and the batch processor (`OTEL_BSP_*`). Asked for without the
extra installed, `problem()` says so in one line and `gql-jobs serve|worker|dev` stop.

What is traced, with OpenTelemetry's semantic conventions (stable HTTP and database attributes,
`OTEL_SEMCONV_STABILITY_OPT_IN=http,database` unless set otherwise):

* the API: each HTTP request (FastAPI instrumentation; `/metrics`, `/healthz`, `/readyz` left
  out, and no span per ASGI message), each GraphQL operation (Strawberry's extension, spans named
  `mutation Submit` with `graphql.operation.*`, and one span per root field; no arguments or
  documents recorded, as they carry clients' payloads), and each Redis command (redis
  instrumentation);
* a submission: a PRODUCER span `send <queue>` (`messaging.system` `rq`), whose W3C `traceparent`
  is stored in each job's RQ meta (`meta.traceparent`, where `rq info`, `Job.fetch` and every RQ
  tool still read the job);
* a job: the worker continues that trace with a span `wait <queue>` (enqueued -> started) and a
  CONSUMER span `process <queue>` around RQ's `perform_job` (the run, and the storing of its
  result), child of (and linked to) the producer span, with the queue wait as an attribute.

With tracing off gql-jobs imports nothing of OpenTelemetry, adds no extension to the schema and no
middleware to the app, and its hot paths test one module-level flag (a submission pays ~0.6 us).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from gql_jobs.constants import META_TRACEPARENT
from gql_jobs.domain import PreparedJob

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from strawberry.extensions import SchemaExtension

#: `messaging.system` of our queue (not in the conventions' list of well-known values).
MESSAGING_SYSTEM = "rq"
#: Service names when `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) is unset.
API_SERVICE = "gql-jobs-api"
WORKER_SERVICE = "gql-jobs-worker"
#: Not traced: scrapes and probes, every few seconds, say nothing about the work.
EXCLUDED_URLS = "/metrics,/healthz,/readyz"
#: Span attribute: seconds from the job's enqueueing to its start in a worker.
QUEUE_WAIT_ATTRIBUTE = "gql_jobs.job.queue_wait_seconds"
#: How long a work horse waits for its spans to be exported before it exits (RQ's `os._exit`).
FLUSH_MILLIS = 5000
INSTALL_HINT = "pip install 'gql-jobs[otel]'"
_EXPORTER_GROUP = "opentelemetry_traces_exporter"
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def requested(environ: Mapping[str, str] = os.environ) -> str | None:
    """The variable that turns tracing on in this environment, or `None` (tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return "OTEL_TRACES_EXPORTER" if exporter_names(environ) else None
    return next((name for name in _ENDPOINTS if environ.get(name, "").strip()), None)


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The SDK's entry-point names of the exporters asked for (`otlp` by its protocol)."""
    asked = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = (protocol or "grpc").strip()
    names = []
    for name in (n.strip() for n in asked.split(",")):
        if name and name != "none":
            names.append(_OTLP_BY_PROTOCOL.get(protocol, f"otlp ({protocol})") if name == "otlp" else name)
    return names


def problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the tracing asked for cannot start, in one line (`None`: off, or it can start)."""
    variable = requested(environ)
    if variable is None:
        return None
    if not _installed("opentelemetry.sdk"):
        return f"{variable} is set but OpenTelemetry is not installed: {INSTALL_HINT}"
    available = {point.name for point in entry_points(group=_EXPORTER_GROUP)}
    for name in exporter_names(environ):
        if name not in available:
            have = ", ".join(sorted(available))
            return f"OTEL_TRACES_EXPORTER: no installed exporter {name!r} (installed: {have})"
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing too
        return False


class TracingError(Exception):
    """Tracing was asked for and cannot start; the message is one line naming the variable."""


@dataclass(frozen=True)
class _Tracing:
    provider: TracerProvider
    tracer: Tracer


_active: _Tracing | None = None


def enabled() -> bool:
    return _active is not None


def start(service_name: str, exporter: SpanExporter | None = None) -> bool:
    """Set up tracing for this process, once, if the environment asks for it (or `exporter` is
    given: tests pass an in-memory one). True when tracing is on. Raises `TracingError`."""
    global _active  # noqa: PLW0603 (one provider per process, like OpenTelemetry's own global)
    if _active is not None:
        return True
    if exporter is None and requested() is None:
        return False
    if exporter is None and (reason := problem()) is not None:
        raise TracingError(reason)
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")
    from opentelemetry import trace  # noqa: PLC0415 (the extra is optional)
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    provider = _provider(service_name, exporter)
    trace.set_tracer_provider(provider)  # for libraries that trace by themselves
    _ignore_inbound_context_safely()
    RedisInstrumentor().instrument(tracer_provider=provider)
    _active = _Tracing(provider, provider.get_tracer("gql_jobs"))
    return True


def _ignore_inbound_context_safely() -> None:
    """`OTEL_PROPAGATORS=none` is how an operator stops the API continuing clients' `traceparent`
    headers (a client picks its trace id, and under a parent-based sampler its sampling), but it
    makes the SDK's global propagator extract `None`, which the ASGI instrumentation attaches as
    the current context: every traced request then failed with a 500 (OpenTelemetry 1.45,
    instrumentation 0.66b2). A propagator that keeps the context it is given ignores inbound
    headers as meant. Jobs still carry the API's trace: `_producing` injects with W3C itself."""
    from opentelemetry import propagate  # noqa: PLC0415
    from opentelemetry.context import Context  # noqa: PLC0415
    from opentelemetry.propagators.textmap import (  # noqa: PLC0415
        CarrierT,
        Getter,
        Setter,
        TextMapPropagator,
        default_getter,
        default_setter,
    )

    if propagate.get_global_textmap().extract({}) is not None:
        return

    class IgnoreInbound(TextMapPropagator):
        def extract(
            self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
        ) -> Context:
            return context if context is not None else Context()

        def inject(
            self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
        ) -> None:
            return None

        @property
        def fields(self) -> set[str]:
            return set()

    propagate.set_global_textmap(IgnoreInbound())


def _provider(service_name: str, exporter: SpanExporter | None) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: PLC0415

    resource = Resource.create()  # reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    loaded = {point.name: point for point in entry_points(group=_EXPORTER_GROUP)}
    for name in exporter_names():
        provider.add_span_processor(BatchSpanProcessor(loaded[name].load()()))
    return provider


def stop() -> None:
    """Flush and drop this process's tracing (tests; the global provider stays, as OpenTelemetry
    allows it to be set only once)."""
    global _active  # noqa: PLW0603
    if _active is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    RedisInstrumentor().uninstrument()
    _active.provider.force_flush()
    _active = None


def flush() -> None:
    """Export what is pending now: a work horse leaves by `os._exit`, which runs no exit hooks."""
    if _active is not None:
        _active.provider.force_flush(FLUSH_MILLIS)


# -- the API ------------------------------------------------------------------------------------


def fastapi_options() -> dict[str, Any]:
    """`FastAPI(...)` arguments for its own OpenTelemetry support (newer FastAPI releases, 0.165
    here, which depend on OpenTelemetry's API; older ones have no such argument): off while our
    tracing is off. Left on, it asks OpenTelemetry for the global tracer, meter and logger
    providers on every request, each an `os.environ` lookup, only to find them unconfigured: 2.5%
    of a `submitJob`'s CPU (py-spy, issue #20). With tracing on, `instrument_app`'s middleware
    makes the HTTP spans and FastAPI's own support stands aside by itself (it finds that
    middleware in the stack)."""
    from fastapi import FastAPI  # noqa: PLC0415 (the worker imports this module too)

    if _active is not None or "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def instrument_app(app: FastAPI) -> None:
    """Trace each HTTP request of `app` (nothing when tracing is off)."""
    if _active is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_active.provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],  # a span per ASGI message would outnumber the work
    )


def graphql_extensions() -> list[type[SchemaExtension]]:
    """The schema extensions that trace GraphQL operations: none when tracing is off."""
    return [] if _active is None else [_graphql_extension()]


@cache
def _graphql_extension() -> type[SchemaExtension]:
    """Strawberry's OpenTelemetry extension, naming spans by the conventions and recording no
    arguments (defined on first use: Strawberry's module imports OpenTelemetry)."""
    from graphql import GraphQLResolveInfo  # noqa: PLC0415
    from opentelemetry.semconv._incubating.attributes import graphql_attributes  # noqa: PLC0415
    from opentelemetry.trace import SpanKind  # noqa: PLC0415
    from strawberry.extensions import LifecycleStep  # noqa: PLC0415
    from strawberry.extensions.tracing import OpenTelemetryExtension  # noqa: PLC0415

    class SemanticGraphQLTracing(OpenTelemetryExtension):
        """One span per operation, `{type} {name}` (or `{type}`), with `graphql.operation.type`
        and `.name`; a span per root field only (a span per field would cost more than the field);
        no `query` or argument attributes, which hold clients' payloads."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(tracer_provider=_active.provider if _active else None, **kwargs)

        def on_operation(self) -> Generator[None, None, None]:
            # Strawberry's own would record the whole document (`query`) in a SERVER span nested in
            # the HTTP one; ours is INTERNAL, named and described by the conventions once parsed.
            span = self._tracer.start_span("GraphQL Operation", kind=SpanKind.INTERNAL)
            self._span_holder[LifecycleStep.OPERATION] = span
            yield
            context = self.execution_context
            kind = _operation_type(context)
            name = context.operation_name
            span.update_name(f"{kind} {name}" if kind and name else kind or "GraphQL Operation")
            if kind:
                span.set_attribute(graphql_attributes.GRAPHQL_OPERATION_TYPE, kind)
            if name:
                span.set_attribute(graphql_attributes.GRAPHQL_OPERATION_NAME, name)
            span.end()

        def add_tags(self, span: Span, info: GraphQLResolveInfo[Any], kwargs: Any) -> None:
            span.set_attribute("graphql.field.path", str(info.path.key))

        def resolve(
            self, _next: Any, root: Any, info: GraphQLResolveInfo[Any], *args: Any, **kwargs: Any
        ) -> Any:
            if info.path.prev is not None:  # not a root field
                return _next(root, info, *args, **kwargs)
            return super().resolve(_next, root, info, *args, **kwargs)

    return SemanticGraphQLTracing


def _operation_type(context: Any) -> str | None:
    try:
        return str(context.operation_type.value)
    except Exception:  # no document (it failed to parse), or no such operation
        return None


# -- jobs: submission and run -------------------------------------------------------------------


def producing(jobs: Sequence[PreparedJob]) -> AbstractContextManager[None]:
    """A PRODUCER span around the writes of `jobs`, whose trace context each job carries in its
    meta (for the worker). Nothing (one shared no-op) when tracing is off or no job is written."""
    if _active is None or not jobs:
        return _NOTHING
    return _producing(_active, jobs)


_NOTHING: AbstractContextManager[None] = nullcontext()


@contextmanager
def _producing(active: _Tracing, jobs: Sequence[PreparedJob]) -> Iterator[None]:
    from opentelemetry.trace import SpanKind  # noqa: PLC0415
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    queues = sorted({job.queue for job in jobs})
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.operation": "publish",  # the name before the conventions' 1.26
    }
    if len(queues) == 1:
        attributes["messaging.destination.name"] = queues[0]
    if len(jobs) == 1:
        attributes["messaging.message.id"] = jobs[0].job_id
    else:
        attributes["messaging.batch.message_count"] = len(jobs)
    name = f"send {queues[0]}" if len(queues) == 1 else "send"
    with active.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)  # W3C only: baggage may hold anything
        for job in jobs:
            job.meta[META_TRACEPARENT] = carrier["traceparent"]
        yield


def redis_call(command: str, commands: int) -> AbstractContextManager[None]:
    """A CLIENT span for a Redis command we send on a connection of our own (the write script,
    `store.writes`), which redis-py's instrumentation, wrapping its clients' calls, cannot see;
    named and described as that instrumentation names its spans. No-op when tracing is off."""
    if _active is None:
        return _NOTHING
    return _redis_call(_active, command, commands)


@contextmanager
def _redis_call(active: _Tracing, command: str, commands: int) -> Iterator[None]:
    from opentelemetry.trace import SpanKind  # noqa: PLC0415

    attributes: dict[str, str | int] = {
        "db.system.name": "redis",
        "db.system": "redis",  # the name before the conventions' 1.26
        "db.operation.name": command,
        "gql_jobs.redis.commands": commands,  # what the script runs
    }
    with active.tracer.start_as_current_span(command, kind=SpanKind.CLIENT, attributes=attributes):
        yield


@contextmanager
def consuming(
    job_id: str, queue: str, meta: Mapping[str, Any], enqueued_at: datetime | None
) -> Iterator[Span | None]:
    """The worker's side: a `wait <queue>` span (enqueued -> now) and a CONSUMER span
    `process <queue>` for the run, both in the submission's trace when the job carries one.
    Yields the process span (`None` when tracing is off)."""
    if _active is None:
        yield None
        return
    from opentelemetry.trace import Link, SpanKind, get_current_span  # noqa: PLC0415
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415

    traceparent = meta.get(META_TRACEPARENT) if isinstance(meta, Mapping) else None
    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if isinstance(traceparent, str)
        else None
    )
    producer = get_current_span(parent).get_span_context() if parent is not None else None
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "perform",
        "messaging.operation": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
    }
    started = datetime.now(UTC)
    if enqueued_at is not None:
        enqueued = enqueued_at if enqueued_at.tzinfo else enqueued_at.replace(tzinfo=UTC)
        wait = max(0.0, (started - enqueued).total_seconds())
        attributes[QUEUE_WAIT_ATTRIBUTE] = wait
        _active.tracer.start_span(
            f"wait {queue}", context=parent, start_time=_nanos(enqueued), attributes=attributes
        ).end(end_time=_nanos(started))
    links = [Link(producer)] if producer is not None and producer.is_valid else None
    with _active.tracer.start_as_current_span(
        f"process {queue}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes, links=links
    ) as span:
        yield span


def end_job(span: Span | None, outcome: str) -> None:
    """Mark the process span with the job's outcome (an error unless it finished)."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    span.set_attribute("gql_jobs.job.outcome", outcome)
    if outcome != "finished":
        span.set_status(Status(StatusCode.ERROR, f"job {outcome}"))
        span.set_attribute("error.type", outcome)


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
