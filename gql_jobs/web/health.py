"""Liveness (`/healthz`), readiness (`/readyz`: Redis answers) and metrics (`/metrics`).

None of them waits for the request thread pool: `/healthz` does no I/O, `/readyz` pings Redis on
the event loop, and `/metrics` is made on the operator pool (see `JobService.metrics`). So a process
busy with slow queries still reports itself alive and ready, and can still be scraped.

`/metrics` names queues and tasks of every tenant, so it is guarded like the API: with
`GQL_JOBS_METRICS_ACCESS=auto` (the default) it needs a key with the `metrics` (or `admin`) scope
whenever API keys are configured, and is open when the API is; `open` and `key` force either way.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from gql_jobs.auth import ANONYMOUS, Principal, Scope
from gql_jobs.errors import ServiceUnavailableError
from gql_jobs.service.jobs import JobService
from gql_jobs.web.deps import caller_of, service_of

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    service = service_of(request)
    _authorize_scrape(service, caller_of(request))
    body, content_type = await service.metrics()
    return Response(body, media_type=content_type)


def _authorize_scrape(service: JobService, caller: Principal | None) -> None:
    """Refuse (401/403) a scrape the `metrics_access` setting does not allow."""
    access = service.settings.metrics_access
    if access == "open" or (access == "auto" and caller == ANONYMOUS):
        return  # `caller` is ANONYMOUS exactly when no API keys are configured
    service.authorize(caller, Scope.METRICS)


@router.get("/readyz", summary="Redis answers: the API can take traffic")
async def readyz(request: Request) -> JSONResponse:
    try:
        await service_of(request).ping()
    except ServiceUnavailableError as exc:
        return JSONResponse({"status": "unavailable", "detail": exc.message}, status_code=503)
    return JSONResponse({"status": "ready"})
