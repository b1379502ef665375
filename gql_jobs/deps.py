"""Dependencies both transports share: the job service and the one way to call it from async code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import anyio.to_thread
from fastapi import Depends
from starlette.requests import HTTPConnection

from gql_jobs.service import JobService
from gql_jobs.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


def get_service(connection: HTTPConnection) -> JobService:
    """The process's job service (typed `HTTPConnection` so WebSocket routes can use it too)."""
    service: JobService = connection.app.state.service
    return service


def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


ServiceDep = Annotated[JobService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking service call on a worker thread: the event loop never waits on Redis."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
