"""The per-request GraphQL context, built by a FastAPI dependency shared with the REST routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import strawberry
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from gql_jobs.auth import KeyStore, Principal
from gql_jobs.deps import get_caller, get_live, get_service
from gql_jobs.live import LiveUpdates
from gql_jobs.service import JobService


@dataclass
class Context(BaseContext):
    service: JobService
    live: LiveUpdates
    keys: KeyStore
    caller: Principal | None

    def __post_init__(self) -> None:
        super().__init__()


Info: TypeAlias = strawberry.Info[Context, None]


async def get_context(connection: HTTPConnection) -> Context:
    """Per request; a WebSocket's caller is set again from its `connection_init` (see router).

    One dependency that calls the shared ones itself: FastAPI's dependency solving, per dependency
    and per request, was an eighth of a small query's CPU."""
    return Context(
        service=await get_service(connection),
        live=await get_live(connection),
        keys=connection.app.state.keys,
        caller=await get_caller(connection),
    )
