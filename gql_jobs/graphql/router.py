"""Mounting GraphQL at /graphql on the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
)

from gql_jobs.graphql.context import Context, get_context
from gql_jobs.graphql.schema import build_schema
from gql_jobs.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    router: GraphQLRouter[Context, None] = GraphQLRouter(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        context_getter=get_context,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        allowed_origins=settings.allowed_origins,
        keep_alive=True,
        keep_alive_interval=15,
    )
    app.include_router(router, prefix="/graphql", tags=["GraphQL"])
