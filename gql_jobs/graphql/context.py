"""The per-request GraphQL context, built by a FastAPI dependency shared with the REST routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import strawberry
from strawberry.fastapi import BaseContext

from gql_jobs.deps import LiveDep, ServiceDep
from gql_jobs.live import LiveUpdates
from gql_jobs.service import JobService


@dataclass
class Context(BaseContext):
    service: JobService
    live: LiveUpdates

    def __post_init__(self) -> None:
        super().__init__()


Info: TypeAlias = strawberry.Info[Context, None]


async def get_context(service: ServiceDep, live: LiveDep) -> Context:
    return Context(service=service, live=live)
