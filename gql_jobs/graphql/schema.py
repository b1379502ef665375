"""The Strawberry schema, its protective extensions, and the SDL export."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.mutations import Mutation
from gql_jobs.graphql.queries import Query
from gql_jobs.graphql.subscriptions import Subscription
from gql_jobs.settings import Settings


def should_mask(error: GraphQLError) -> bool:
    """Mask only the unexpected: GraphQL's own errors (syntax, validation, limits) and ours read clearly."""
    original = error.original_error
    return not (original is None or isinstance(original, GraphQLError | GqlJobsError))


def build_schema(settings: Settings) -> strawberry.Schema:
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: MaskErrors(should_mask_error=should_mask),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_query_aliases),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not settings.introspection),
    )


def sdl() -> str:
    """The schema as SDL, exactly as `schema.graphql` holds it."""
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription).as_str() + "\n"
