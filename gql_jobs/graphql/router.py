"""Mounting GraphQL at /graphql on the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter

from gql_jobs.graphql.context import Context, get_context
from gql_jobs.graphql.schema import build_schema
from gql_jobs.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    router: GraphQLRouter[Context, None] = GraphQLRouter(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        context_getter=get_context,
    )
    app.include_router(router, prefix="/graphql", tags=["GraphQL"])
