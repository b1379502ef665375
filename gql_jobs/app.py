"""The FastAPI application factory: REST routes, GraphQL at /graphql, health checks.

`create_app(settings)` builds everything from the settings it is given (tests pass their own);
`gql-jobs serve` and uvicorn's `--factory` call it with settings read from the environment.

This is the composition root: the one module above the store that builds Redis clients
(`gql_jobs.store.connections`) and hands them to the service; the web and GraphQL floors above
it never see them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from gql_jobs import __version__, heap, tracing
from gql_jobs.auth import KeyStore
from gql_jobs.errors import RedisNotConfiguredError
from gql_jobs.service.jobs import JobService
from gql_jobs.service.live import LiveUpdates
from gql_jobs.settings import Settings, deprecated_variables, load_settings
from gql_jobs.store.connections import api_async_redis, api_redis, close_async, describe, pubsub_redis
from gql_jobs.store.threads import size_request_pool
from gql_jobs.tasks import TaskRegistry, task_modules
from gql_jobs.web import cors, health, rest
from gql_jobs.web.direct_route import DirectRoute
from gql_jobs.web.ide import install as install_browser_ui
from gql_jobs.web.limits import BodyReadTimeout, BodySizeLimit
from gql_jobs.web.requests import RequestContext
from gql_jobs.web.server import HEADER_TIMEOUT_STATE

log = logging.getLogger(__name__)

#: Room for a full batch of maximum-size payloads plus the GraphQL document around them.
BODY_OVERHEAD_BYTES = 1 << 20


def build_service(settings: Settings) -> JobService:
    registry = TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    return JobService(api_redis(settings), registry, settings, api_async_redis(settings))


def redis_problem(settings: Settings) -> str | None:
    """Why the API cannot work with the configured Redis (`None`: it answers a PING)."""
    try:
        api_redis(settings).ping()
    except RedisNotConfiguredError as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot reach Redis at {describe(settings)}: {exc}"
    return None


def create_app(settings: Settings | None = None, service: JobService | None = None) -> FastAPI:
    settings = settings or load_settings()
    tracing.start(tracing.API_SERVICE)  # before the schema (its extensions) and the first client
    service = service or build_service(settings)

    live = LiveUpdates(service, pubsub_redis(settings), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        size_request_pool(settings.request_threads)  # on the loop that serves the requests
        heap.freeze_startup_objects()  # the schema, routes, modules: no longer walked by each full GC
        yield {HEADER_TIMEOUT_STATE: settings.header_timeout}  # for `server`'s protocols
        await live.close()
        service.connection.close()
        await close_async(service.async_connection)

    docs = docs_enabled(settings)
    app = FastAPI(
        title="gql-jobs",
        version=__version__,
        description="Submit and follow RQ jobs over GraphQL (/graphql) or the lesson's REST routes.",
        lifespan=lifespan,
        docs_url=None,  # web.docs serves /docs with Swagger UI from the package, not a CDN
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        **tracing.fastapi_options(),
    )
    app.state.settings = settings
    app.state.service = service
    app.state.live = live
    app.state.keys = KeyStore(settings.api_keys)
    if app.state.keys.is_open:
        log.warning(
            "GQL_JOBS_API_KEYS is empty: the API is OPEN, every caller is an admin (fine for dev only)"
        )
    for old, new in deprecated_variables().items():
        log.warning("%s is deprecated: set %s instead (it means the same and more)", old, new)
    rest.install(app)
    app.include_router(health.router)
    from gql_jobs.graphql.router import install as install_graphql  # noqa: PLC0415 (heavy import)

    graphql_route = install_graphql(app, settings)
    install_browser_ui(app, settings, docs=docs)
    app.add_middleware(DirectRoute, route=graphql_route)  # added first: the innermost middleware
    limit = settings.max_payload_bytes * min(settings.max_batch_size, 64) + BODY_OVERHEAD_BYTES
    app.add_middleware(BodySizeLimit, max_bytes=limit)
    app.add_middleware(BodyReadTimeout, seconds=settings.body_timeout)
    cors.install(app, settings)  # outside the body guards (their 413 and 408 carry CORS headers)
    app.add_middleware(RequestContext)
    tracing.instrument_app(app)  # outermost: the span covers every middleware
    return app


def docs_enabled(settings: Settings) -> bool:
    """The REST docs go with GraphiQL unless set apart: both are browser tools for developers, off
    under `serve` (/docs is local, but FastAPI's /redoc still loads ReDoc from a public CDN)."""
    return settings.graphiql if settings.api_docs is None else settings.api_docs


def app_from_env() -> FastAPI:
    """Entry point for `uvicorn --factory gql_jobs.app:app_from_env`."""
    return create_app()
