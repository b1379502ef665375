"""The per-request GraphQL context, from the same helpers as the REST routes' dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from starlette.datastructures import State
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader

from gql_jobs.auth import KeyStore, Principal
from gql_jobs.domain import Attempt
from gql_jobs.graphql.negotiation import accepts_parts
from gql_jobs.service.jobs import JobService
from gql_jobs.service.live import LiveUpdates
from gql_jobs.web.deps import caller_for


@dataclass
class Context:
    service: JobService
    live: LiveUpdates
    keys: KeyStore
    caller: Principal | None
    #: A WebSocket's `connection_init` payload (Strawberry sets it; see `router.on_ws_connect`).
    connection_params: object = None
    #: The principal whose connection slot this WebSocket holds, once initialised (see router).
    connection_slot: str | None = None
    #: Whether the answer may come in parts (`@defer`, `@stream`): an HTTP request accepting
    #: `multipart/mixed` or SSE, not in a batch (the router clears it), never a WebSocket.
    incremental: bool = False
    _attempts: DataLoader[str, list[Attempt]] | None = field(default=None, repr=False)

    @property
    def attempts(self) -> DataLoader[str, list[Attempt]]:
        """Batches the `attempts` of every job a response shows into one read (no cache: a
        subscription's context lives as long as its connection, and attempts change)."""
        if self._attempts is None:

            async def load(job_ids: Sequence[str]) -> list[list[Attempt]]:
                return await self.service.attempts(self.caller, job_ids)

            self._attempts = DataLoader(load_fn=load, cache=False)
        return self._attempts


Info: TypeAlias = strawberry.Info[Context, None]


async def build_context(connection: HTTPConnection) -> Context:
    """Per request; a WebSocket's caller is set again from its `connection_init` (see router)."""
    headers = connection.headers
    authorization, api_key, accept = (
        headers.get("authorization"),
        headers.get("x-api-key"),
        headers.get("accept"),
    )
    context = http_context(connection.app.state, authorization, api_key, accept)
    context.incremental = context.incremental and connection.scope["type"] == "http"  # never a WebSocket
    return context


def http_context(state: State, authorization: str | None, api_key: str | None, accept: str | None) -> Context:
    """The context of an HTTP request, from the app's state and the headers it reads (GraphQL's
    short path reads them once, from the ASGI scope: `router.PlainPost`)."""
    keys: KeyStore = state.keys
    return Context(
        service=state.service,
        live=state.live,
        keys=keys,
        caller=caller_for(keys, authorization, api_key),
        incremental=accepts_parts(accept),
    )
