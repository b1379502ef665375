"""Dependencies both transports share: the job service and the live-updates hub of this process."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gql_jobs.auth import InvalidKeyError, KeyStore, Principal, key_from_headers
from gql_jobs.service.jobs import JobService
from gql_jobs.service.live import LiveUpdates
from gql_jobs.settings import Settings


async def get_service(connection: HTTPConnection) -> JobService:
    """The process's job service (typed `HTTPConnection` so WebSocket routes can use it too)."""
    service: JobService = connection.app.state.service
    return service


async def get_live(connection: HTTPConnection) -> LiveUpdates:
    live: LiveUpdates = connection.app.state.live
    return live


async def get_caller(connection: HTTPConnection) -> Principal | None:
    """Who sent the request: `None` without a valid key (the service then refuses what needs one)."""
    keys: KeyStore = connection.app.state.keys
    key = key_from_headers(connection.headers.get("authorization"), connection.headers.get("x-api-key"))
    try:
        return keys.principal_for(key)
    except InvalidKeyError:
        return None


async def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


ServiceDep = Annotated[JobService, Depends(get_service)]
LiveDep = Annotated[LiveUpdates, Depends(get_live)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Principal | None, Depends(get_caller)]
