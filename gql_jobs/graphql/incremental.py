"""Incremental delivery (`@defer`, `@stream`): who may ask for it, and errors masked in every part.

graphql-core 3.3 executes `@defer` and `@stream` (Strawberry's
`enable_experimental_incremental_execution`); Strawberry answers such an operation in parts, as
`multipart/mixed` over plain HTTP (the incremental delivery format of graphql-js 17.0.0-alpha.9:
`pending`, `incremental`, `completed`, `hasNext`, which Apollo Client 4 reads with its
`GraphQL17Alpha9Handler`) or as SSE events. Two gaps are closed here:

- Strawberry answers in parts whatever the client accepts, and has no wire form for parts in a
  batch or over graphql-transport-ws (it rejects those only after the operation ran: a deferred
  mutation would run and answer an error). A client that cannot read parts is refused before
  anything runs (`refusal`), with `STREAMING_REQUIRED`.
- Strawberry's `MaskErrors` masks the first part of a plain-HTTP answer only: the errors of the
  later parts (a deferred fragment's failing field) would reach the client unmasked (`masked`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from graphql import DirectiveNode, DocumentNode, GraphQLError, visit
from graphql.execution import ExperimentalIncrementalExecutionResults, SubsequentIncrementalExecutionResult
from graphql.language import BREAK, Visitor

from gql_jobs.errors import ErrorCode

#: The directives whose answers come in parts.
DIRECTIVES = frozenset({"defer", "stream"})

#: Why an operation with `@defer` or `@stream` is refused to a client that cannot read its parts.
NOT_ACCEPTED = (
    "This operation uses @defer or @stream, whose answer comes in several parts: send it alone "
    "(not in a batch) over HTTP with `Accept: multipart/mixed` (Apollo Client 4 with its "
    "GraphQL17Alpha9Handler does) or `Accept: text/event-stream`; WebSockets cannot carry the parts"
)


class _Finder(Visitor):
    found = False

    def enter_directive(self, node: DirectiveNode, *_: object) -> object:
        if node.name.value in DIRECTIVES:
            self.found = True
            return BREAK
        return None


def uses_incremental_delivery(query: str, document: DocumentNode) -> bool:
    """Whether `document` asks for `@defer` or `@stream` (even with `if: false`: whether it does is
    known only once variables are, and the refusal must come before anything runs). The text
    is looked at first: the AST is walked only when a directive's name appears in it."""
    if "defer" not in query and "stream" not in query:
        return False
    finder = _Finder()
    visit(document, finder)
    return finder.found


def refusal() -> GraphQLError:
    return GraphQLError(NOT_ACCEPTED, extensions={"code": ErrorCode.STREAMING_REQUIRED.value})


def masked(
    results: ExperimentalIncrementalExecutionResults, mask: Callable[[list[GraphQLError]], list[GraphQLError]]
) -> ExperimentalIncrementalExecutionResults:
    """`results`, whose later parts have their errors passed through `mask` as the first part's
    are (Strawberry masks only that one over plain HTTP)."""

    async def parts() -> AsyncGenerator[SubsequentIncrementalExecutionResult, None]:
        subsequent = results.subsequent_results
        try:
            async for part in subsequent:
                for item in (*(part.incremental or ()), *(part.completed or ())):
                    if item.errors:
                        item.errors = mask(list(item.errors))
                yield part
        finally:
            await subsequent.aclose()

    return results._replace(subsequent_results=parts())
