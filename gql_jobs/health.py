"""Liveness (`/healthz`), readiness (`/readyz`: Redis answers) and metrics (`/metrics`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gql_jobs.concurrency import run_sync
from gql_jobs.deps import ServiceDep
from gql_jobs.errors import ServiceUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(service: ServiceDep) -> Response:
    body, content_type = await run_sync(service.metrics)
    return Response(body, media_type=content_type)


@router.get("/readyz", summary="Redis answers: the API can take traffic")
async def readyz(service: ServiceDep) -> JSONResponse:
    try:
        await run_sync(service.ping)
    except ServiceUnavailableError as exc:
        return JSONResponse({"status": "unavailable", "detail": exc.message}, status_code=503)
    return JSONResponse({"status": "ready"})
