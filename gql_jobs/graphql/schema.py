"""The Strawberry schema, its protective extensions, and the SDL export."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.mutations import Mutation
from gql_jobs.graphql.queries import Query
from gql_jobs.graphql.subscriptions import Subscription
from gql_jobs.metrics import OTHER, Stopwatch, observe_request
from gql_jobs.settings import Settings


def should_mask(error: GraphQLError) -> bool:
    """Mask only the unexpected: GraphQL's own errors (syntax, validation, limits) and ours read clearly."""
    original = error.original_error
    return not (original is None or isinstance(original, GraphQLError | GqlJobsError))


class OperationMetrics(SchemaExtension):
    """Counts and times each GraphQL operation, labelled by its type and first root field."""

    def on_operation(self) -> Iterator[None]:
        watch = Stopwatch()
        yield
        context = self.execution_context
        result = context.result
        failed = bool(getattr(result, "errors", None))
        label = _operation_label(context.graphql_document, context.schema._schema)
        observe_request("graphql", label, "error" if failed else "ok", watch.elapsed)


#: Root fields every operation type has, though no root type lists them.
_META_FIELDS = frozenset({"__typename", "__schema", "__type"})


def _operation_label(document: DocumentNode | None, schema: GraphQLSchema) -> str:
    """`mutation.submitJob`: bounded by the schema, unlike client-chosen operation names. A root
    field the schema does not have (the document fails validation) is `OTHER`: a label value per
    made-up name would let any client grow `/metrics` without end."""
    if document is None:
        return "invalid"
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            fields = [s for s in definition.selection_set.selections if isinstance(s, FieldNode)]
            if not fields:
                return f"{definition.operation.value}.fragment"
            root = fields[0].name.value
            root_type = schema.get_root_type(definition.operation)
            if root not in _META_FIELDS and (root_type is None or root not in root_type.fields):
                root = OTHER
            return f"{definition.operation.value}.{root}"
    return "invalid"


class GuardedSchema(strawberry.Schema):
    """A schema that checks each operation against its limits, once per distinct document.

    Each operation's context is created here with its document already parsed (with the token
    limit) and validated (with the depth, alias and, when off, introspection rules), both cached by
    query text: Strawberry then skips its own parsing and validation. This does what its
    `ParserCache`, `ValidationCache`, `AddValidationRules`, `MaxTokensLimiter` and
    `DisableIntrospection` extensions do together, without their cost: every extension costs every
    request a set of hooks in every phase (measured: the hook machinery was a quarter of a
    `submitJob`'s execution time). A document that does not parse is left to Strawberry, which
    reports the syntax error as usual."""

    def __init__(
        self,
        *args: Any,
        limits: tuple[type[ASTValidationRule], ...],
        max_tokens: int,
        cache_size: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.max_tokens = max_tokens
        self._checked = functools.lru_cache(maxsize=cache_size)(self._check)

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        context = super()._create_execution_context(*args, **kwargs)
        context.validation_rules = context.validation_rules + self.limits
        context.parse_options["max_tokens"] = self.max_tokens
        if context.query and context.graphql_document is None:
            checked = self._checked(context.query)
            if checked is not None:
                context.graphql_document, errors = checked
                context.pre_execution_errors = list(errors)
        return context

    def _check(self, query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]] | None:
        """The parsed document and its validation errors; `None` if it does not parse."""
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None
        rules = (*specified_rules, *self.limits)
        return document, tuple(validate_document(self._schema, document, rules))


def build_schema(settings: Settings) -> strawberry.Schema:
    # The same rule classes on every request: ValidationCache keys on them, so building them per
    # request (what QueryDepthLimiter/MaxAliasesLimiter factories do) made it miss every time.
    limits: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth, None),
        aliases_rule(settings.max_query_aliases),
    ]
    if not settings.introspection:
        limits.append(NoSchemaIntrospectionCustomRule)  # what DisableIntrospection adds
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        OperationMetrics,
        lambda: MaskErrors(should_mask_error=should_mask),
    ]
    return GuardedSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=not settings.introspection),
        limits=tuple(limits),
        max_tokens=settings.max_query_tokens,
    )


def sdl() -> str:
    """The schema as SDL, exactly as `schema.graphql` holds it."""
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription).as_str() + "\n"
