"""The per-request GraphQL context, built by a FastAPI dependency shared with the REST routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import strawberry
from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext

from gql_jobs.auth import KeyStore, Principal
from gql_jobs.deps import CallerDep, LiveDep, ServiceDep
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


async def get_context(
    service: ServiceDep, live: LiveDep, caller: CallerDep, connection: HTTPConnection
) -> Context:
    """Per request; a WebSocket's caller is set again from its `connection_init` (see router)."""
    return Context(service=service, live=live, keys=connection.app.state.keys, caller=caller)
