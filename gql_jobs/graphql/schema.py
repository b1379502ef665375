"""The Strawberry schema, the checks every operation goes through (`documents.py`), and the exports
of its types for clients (the SDL, Apollo's `possibleTypes`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLSchema,
    GraphQLUnionType,
    OperationDefinitionNode,
)
from graphql.execution import (
    Executor,
    ExperimentalIncrementalExecutionResults,
    experimental_execute_incrementally,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from gql_jobs import tracing
from gql_jobs.auth import Principal
from gql_jobs.constants import OTHER, SCAN_BUDGET
from gql_jobs.errors import ErrorCode, GqlJobsError
from gql_jobs.graphql.documents import BAD_USER_INPUT, DocumentCache, DocumentChecker, Limits, coded
from gql_jobs.graphql.executor import PlainLeavesExecutor
from gql_jobs.graphql.incremental import masked, refusal, uses_incremental_delivery
from gql_jobs.graphql.measure import Pricing
from gql_jobs.graphql.mutations import Mutation
from gql_jobs.graphql.persisted import PersistedDocuments
from gql_jobs.graphql.queries import Query
from gql_jobs.graphql.subscriptions import Subscription
from gql_jobs.metrics import Stopwatch, observe_request
from gql_jobs.settings import Settings

INTERNAL_SERVER_ERROR = ErrorCode.INTERNAL_SERVER_ERROR.value


def should_mask(error: GraphQLError) -> bool:
    """Mask only the unexpected: GraphQL's own errors (syntax, validation, limits) and ours read clearly."""
    original = error.original_error
    return not (original is None or isinstance(original, GraphQLError | GqlJobsError))


class CodedMaskErrors(MaskErrors):
    """`MaskErrors`, whose masked errors say `INTERNAL_SERVER_ERROR` (and nothing else)."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return coded(super().anonymise_error(error), INTERNAL_SERVER_ERROR)


def mask_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """What `CodedMaskErrors` does to a result's errors, for the later parts of an incremental answer."""
    masker = CodedMaskErrors(should_mask_error=should_mask)
    return [masker.anonymise_error(error) if should_mask(error) else error for error in errors]


class OperationMetrics(SchemaExtension):
    """Counts and times each GraphQL operation, labelled by its type and first root field."""

    def on_operation(self) -> Iterator[None]:
        watch = Stopwatch()
        try:
            yield
        except Exception:  # raised through the hooks: Strawberry answers it as an error (`execute` masks it)
            self._observe(watch, failed=True)
            raise
        self._observe(watch, failed=bool(getattr(self.execution_context.result, "errors", None)))

    def _observe(self, watch: Stopwatch, *, failed: bool) -> None:
        context = self.execution_context
        label = operation_label(context.graphql_document, context.schema._schema)
        observe_request("graphql", label, "error" if failed else "ok", watch.elapsed)


def coded_masking() -> CodedMaskErrors:
    """Masks unexpected errors (`should_mask`) with the code `INTERNAL_SERVER_ERROR`."""
    return CodedMaskErrors(should_mask_error=should_mask)


#: The extensions of every schema; `direct.py` does what they do, and only when they are all.
OWN_EXTENSIONS: tuple[type[SchemaExtension] | Callable[[], SchemaExtension], ...] = (
    OperationMetrics,
    coded_masking,
)

#: Root fields every operation type has, though no root type lists them.
_META_FIELDS = frozenset({"__typename", "__schema", "__type"})


def operation_label(document: DocumentNode | None, schema: GraphQLSchema) -> str:
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
    """A schema that checks each operation's document against its limits, once per distinct document.

    Each operation's context is created here with its document already checked by a
    `DocumentChecker` (size, tokens, depth, aliases, cost, validation; see `documents.py`), whose
    verdicts are cached by query text: Strawberry then skips its own parsing and validation. This
    does what its `ParserCache`, `ValidationCache`, `AddValidationRules`, `MaxTokensLimiter` and
    `DisableIntrospection` extensions do together, without their cost: every extension costs every
    request a set of hooks in every phase (measured: the hook machinery was a quarter of a
    `submitJob`'s execution time). A document refused before or while parsing has no AST: its
    errors are answered without Strawberry ever parsing it."""

    def __init__(
        self,
        *args: Any,
        limits: Limits,
        cache: DocumentCache,
        persisted: PersistedDocuments,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.documents = DocumentChecker(self._schema, limits, cache)
        #: Documents sent by hash, and (`only_persisted_documents`) the only ones that run.
        self.persisted = persisted
        #: Whether a plain POST may skip Strawberry's `execute` (`direct.py`): only when nothing
        #: but `OperationMetrics` and masking hooks into it (no tracing, no schema directives),
        #: and it runs graphql-core's incremental executor, as `direct.py` does.
        self.direct_execution = (
            list(self.extensions) == list(OWN_EXTENSIONS)
            and not self.directives
            and self._get_execute_function() is experimental_execute_incrementally
        )

    async def execute(  # type: ignore[override]  # the same parameters, by keyword
        self,
        query: str | None,
        *,
        allowed_operation_types: Iterable[OperationType] | None = None,
        **kwargs: Any,
    ) -> ExecutionResult:
        """Never a subscription: those stream (`stream` over SSE, multipart and graphql-transport-ws,
        `subscribe` over legacy graphql-ws). Over plain HTTP one would run as a query, fail
        masked, and log a traceback; refused, the view answers why (`router.JobsGraphQL`)."""
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES) - {
            OperationType.SUBSCRIPTION
        }
        result = await super().execute(query, allowed_operation_types=allowed, **kwargs)
        if isinstance(result, ExperimentalIncrementalExecutionResults):  # `@defer`, `@stream`
            return masked(result, mask_errors)  # as Strawberry returns it, outside its type
        if result.errors:  # masked already, unless an exception escaped the executor and the hooks
            result.errors = mask_errors(result.errors)
        return result

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        context = super()._create_execution_context(*args, **kwargs)
        if context.query and context.graphql_document is None:
            refused = self.persisted.refusal(context.query, getattr(context.context, "caller", None))
            if refused is not None:  # not a trusted document: refused before parsing
                context.pre_execution_errors = [refused]
                return context
            checked = self.documents.check(context.query)
            context.graphql_document = checked.document
            errors = checked.errors or self.documents.over_budget(checked, tenant=_tenant(context))
            if not errors and _refuses_parts(context, checked.document):
                errors = (refusal(),)  # before anything runs: a deferred mutation must not run
            context.pre_execution_errors = list(errors)
        return context

    async def _prepare_operation_async(
        self, context: ExecutionContext, extensions_runner: SchemaExtensionsRunner
    ) -> PreExecutionError | None:
        refused = _refused(context)
        if refused is not None:
            return refused
        return await super()._prepare_operation_async(context, extensions_runner)

    def _prepare_operation_sync(
        self, context: ExecutionContext, extensions_runner: SchemaExtensionsRunner
    ) -> ExecutionResult | None:
        refused = _refused(context)
        if refused is None:
            return super()._prepare_operation_sync(context, extensions_runner)
        self._process_errors(refused.errors or [], context)
        return refused


def _refused(context: ExecutionContext) -> PreExecutionError | None:
    """The errors of a document refused before it had an AST (Strawberry would parse it)."""
    if context.graphql_document is None and context.pre_execution_errors:
        return PreExecutionError(data=None, errors=context.pre_execution_errors)
    return None


def _refuses_parts(context: ExecutionContext, document: DocumentNode | None) -> bool:
    """Whether `document` asks for an answer in parts (`@defer`, `@stream`) that this request's
    client cannot read (`Context.incremental`)."""
    if document is None or getattr(context.context, "incremental", False):
        return False
    return uses_incremental_delivery(context.query or "", document)


def _tenant(context: ExecutionContext) -> bool:
    return is_tenant(getattr(context.context, "caller", None))


def is_tenant(caller: object) -> bool:
    """Whether the caller's listings walk its own index (any caller but an admin, unknown ones too)."""
    return not (isinstance(caller, Principal) and caller.is_admin)


class CodedExecutor(PlainLeavesExecutor):
    """Gives the request errors of execution (variables that do not coerce) `extensions.code`."""

    quiet: ClassVar[bool] = False

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        built = super().build(*args, **{**kwargs, "hide_suggestions": cls.quiet})
        if isinstance(built, list):
            return [coded(error, BAD_USER_INPUT) for error in built]
        return built


class QuietExecutor(CodedExecutor):
    """Coerces variables without "Did you mean ..." (graphql-core's `hide_suggestions`), for
    queries, mutations and subscriptions alike: Strawberry passes no such option itself."""

    quiet = True


def build_schema(settings: Settings) -> GuardedSchema:
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        *OWN_EXTENSIONS,
        *tracing.graphql_extensions(),  # none unless OTEL_* turn tracing on
    ]
    limits = Limits(
        max_document_bytes=settings.max_document_bytes,
        max_tokens=settings.max_query_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_cost=settings.max_query_cost,
        pricing=Pricing(
            max_page_size=settings.max_page_size,
            scan_budget=SCAN_BUDGET,
            bulk_action=min(settings.max_bulk_jobs + SCAN_BUDGET, settings.max_query_cost // 2),
        ),
        hide_suggestions=not settings.introspection,
        # What DisableIntrospection adds.
        extra_rules=() if settings.introspection else (NoSchemaIntrospectionCustomRule,),
    )
    return GuardedSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(
            disable_field_suggestions=not settings.introspection,
            # `@defer` and `@stream` (graphql-core 3.3's incremental executor; see `incremental.py`).
            enable_experimental_incremental_execution=True,
            batching_config=(
                {"max_operations": settings.max_batch_operations} if settings.max_batch_operations else None
            ),
        ),
        execution_context_class=CodedExecutor if settings.introspection else QuietExecutor,
        limits=limits,
        cache=DocumentCache(settings.document_cache_bytes, settings.document_cache_entry_bytes),
        persisted=PersistedDocuments(settings),
    )


def sdl() -> str:
    """The schema as SDL, exactly as `schema.graphql` holds it."""
    return _exported().as_str() + "\n"


def possible_types() -> dict[str, list[str]]:
    """Each union and interface with the object types it may be, as Apollo Client's
    `InMemoryCache({possibleTypes})` takes it: without it, a fragment on an interface inside a
    union result (`... on Error { message }`) matches nothing in the cache and its fields silently
    disappear. `gql-jobs possible-types` prints it."""
    schema = _exported()._schema
    return {
        name: [member.name for member in schema.get_possible_types(named)]
        for name, named in sorted(schema.type_map.items())
        if isinstance(named, GraphQLUnionType | GraphQLInterfaceType) and not name.startswith("__")
    }


def _exported() -> strawberry.Schema:
    """The schema's types alone: what the SDL shows, without a server's settings."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Always on, so declared: codegen validates `@defer`/`@stream` documents against the SDL.
        config=StrawberryConfig(enable_experimental_incremental_execution=True),
    )
