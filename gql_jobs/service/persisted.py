"""Automatic persisted queries: the documents clients registered by hash, kept in Redis.

Shared by every API process (a document registered through one is found by the others), and
bounded there by `persisted_query_ttl`, renewed on each use (see `store.persisted`). The GraphQL
transport decides what may be registered (`gql_jobs.graphql.persisted`); this only stores it.
"""

from __future__ import annotations

from gql_jobs.settings import Settings
from gql_jobs.store import persisted
from gql_jobs.store.connections import AsyncClient, deadline
from gql_jobs.store.guard import redis_guard


class PersistedQueries:
    def __init__(self, async_connection: AsyncClient, settings: Settings) -> None:
        self.async_connection = async_connection
        self.settings = settings

    @redis_guard
    async def lookup(self, digest: str) -> str | None:
        """The document registered under `digest` (a SHA-256 hex digest), or `None`."""
        async with deadline(self.settings):
            return await persisted.read_document(
                self.async_connection, digest, self.settings.persisted_query_ttl
            )

    @redis_guard
    async def register(self, digest: str, document: str) -> None:
        """Keep `document` under `digest` (which the caller checked is its SHA-256)."""
        async with deadline(self.settings):
            await persisted.write_document(
                self.async_connection, digest, document, self.settings.persisted_query_ttl
            )
