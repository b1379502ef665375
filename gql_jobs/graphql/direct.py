"""The short path of a plain GraphQL POST: one checked operation run on graphql-core (issue #20).

What most clients send is a JSON POST of one operation whose document this process has already
checked: Apollo, urql, the generated client, scripts and dashboards repeat the same few documents.
Strawberry's view and `Schema.execute` cost such a request about as much CPU as the job service
does, in work that does not change its answer: the request adapter, `Content-Type` and `Accept`
parsed with `email.message`, the transport lookup, an `ExecutionContext`, our two schema
extensions instantiated and stepped through five lifecycle phases, a `MiddlewareManager`.

`DirectExecution.execute` runs such a request the way `GuardedSchema.execute` would, minus that
machinery: the same document checks (`DocumentChecker`, cached), graphql-core's executor with the
schema's own execution context class, Strawberry's processing of errors (logged, suggestions
removed), the same masking (`mask_errors`) and the same metrics (`observe_request`). What the
router answers from the result is built by the view's own `process_result` and `create_response`.

It declines (`None`, before anything ran) whatever is not that plain case, and the request then
goes through Strawberry's view as before: a document refused or not yet checked, a batch, a
document named by hash, a subscription, `@defer`/`@stream`, more than one operation without a
name to choose, a schema with extensions or directives beyond ours (tracing on). Answers are the
same byte for byte either way: `tests/graphql/test_direct.py` sends each kind of request down both
paths, and holds the Strawberry internals used here to the installed release.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, OperationType, get_operation_ast
from graphql.execution import experimental_execute_incrementally
from strawberry.execution import optimized_is_awaitable
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from gql_jobs.graphql.incremental import uses_incremental_delivery
from gql_jobs.graphql.schema import GuardedSchema, is_tenant, mask_errors, operation_label
from gql_jobs.metrics import Stopwatch, observe_request

if TYPE_CHECKING:
    from gql_jobs.graphql.context import Context

#: The members of a request body the short path reads; any other (`documentId`) sends it the long way.
_MEMBERS = frozenset({"query", "variables", "operationName", "extensions"})
#: Strawberry's `inspect.isawaitable` that answers plain values first, typed as graphql-core asks.
_is_awaitable = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)
_RUNS = frozenset({OperationType.QUERY, OperationType.MUTATION})
#: What an HTTP POST may run (Strawberry's `OperationType.from_http`, less subscriptions: they stream).
_ALLOWED = frozenset({StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION})


@dataclass(frozen=True)
class PlainRequest:
    """One operation, sent in full: what a JSON body decoded to, when it is only that."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None

    @classmethod
    def of(cls, data: object) -> PlainRequest | None:
        """The request a decoded body makes, or None for any other body (a batch, a hash, a
        member of the wrong type: Strawberry's view answers those, as it always did)."""
        if not isinstance(data, dict) or not data.keys() <= _MEMBERS:
            return None
        query = data.get("query")
        variables = data.get("variables")
        name = data.get("operationName")
        extensions = data.get("extensions")
        if not isinstance(query, str) or not isinstance(variables, dict | None):
            return None
        if not isinstance(name, str | None) or not isinstance(extensions, dict | None):
            return None
        if extensions and "persistedQuery" in extensions:
            return None
        return cls(query, variables, name, extensions)


class DirectExecution:
    """Runs a `PlainRequest` on graphql-core's executor, as `GuardedSchema.execute` would."""

    def __init__(self, schema: GuardedSchema) -> None:
        self.schema = schema
        self.documents = schema.documents
        self.persisted = schema.persisted
        #: Off when anything but our own extensions would run: their hooks are what this skips.
        self.enabled = schema.direct_execution
        self._executor_class = schema.execution_context_class

    async def execute(self, request: PlainRequest, context: Context) -> ExecutionResult | None:
        """The operation's result, or None when it is not for the short path (nothing ran)."""
        query = request.query
        if self.persisted.refusal(query, context.caller) is not None:
            return None
        checked = self.documents.check(query, derive=True)
        document = checked.document
        if document is None or checked.errors:
            return None
        if self.documents.over_budget(checked, tenant=is_tenant(context.caller)):
            return None
        operation = get_operation_ast(document, request.operation_name)
        if operation is None or operation.operation not in _RUNS:
            return None
        if uses_incremental_delivery(query, document):
            return None
        watch = Stopwatch()  # where `OperationMetrics` starts its own: the checks are before
        try:
            outcome = experimental_execute_incrementally(
                self.schema._schema,
                document,
                root_value=None,
                variable_values=request.variables,
                operation_name=request.operation_name,
                context_value=context,
                is_awaitable=_is_awaitable,
                executor_class=self._executor_class,
                operation_extensions=request.extensions,
            )
            if _is_awaitable(outcome):
                outcome = await outcome
            if not isinstance(outcome, GraphQLExecutionResult):  # `@defer` was ruled out above
                raise TypeError(f"an answer in parts to a document without @defer: {outcome!r}")
            errors = outcome.errors
            data = outcome.data
        except Exception as exc:  # as Strawberry's `execute`: an error of the operation, masked
            errors = [exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)]
            data = None
        if errors:
            self.schema._process_errors(errors, self._execution_context(request, context, document))
            errors = mask_errors(errors)
        label = operation_label(document, self.schema._schema)
        observe_request("graphql", label, "error" if errors else "ok", watch.elapsed)
        return ExecutionResult(data=data, errors=errors or None, extensions={})

    def _execution_context(self, request: PlainRequest, context: Context, document: Any) -> ExecutionContext:
        """What Strawberry logs errors with (made only when there are errors to log)."""
        execution = ExecutionContext(
            query=request.query,
            schema=self.schema,
            allowed_operations=_ALLOWED,
            context=context,
            root_value=None,
            variables=request.variables,
            provided_operation_name=request.operation_name,
            operation_extensions=request.extensions,
        )
        execution.graphql_document = document
        return execution
