"""graphql-core's executor, with a short path for plain leaf fields (issue #20).

A page of 50 jobs is hundreds of fields like `Job.status` or `Edge.cursor`: Strawberry resolves
them by reading an attribute (a "basic" field: no resolver, no extension), but graphql-core still
builds a `GraphQLResolveInfo`, looks up arguments and walks `complete_value` for each one, which
was most of a page's execution. For such a field (a scalar or enum, possibly non-null, without
arguments, no middleware) `execute_field` here reads the attribute and coerces it directly.

Anything unusual (a null for a non-null field, a value the scalar refuses, an exception) goes back
through graphql-core's own `execute_field`, which raises and locates the error exactly as before:
reading an attribute and coercing a value have no side effects, so doing it twice is harmless.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

#: Attribute of a `GraphQLField` holding its plan: `(leaf type, non-null)`, or `None` when the
#: field needs graphql-core's full path. Computed once per field of the schema.
_PLAN = "_gql_jobs_leaf_plan"


def _plan(field_def: GraphQLField) -> tuple[GraphQLLeafType, bool] | None:
    plan: tuple[GraphQLLeafType, bool] | None
    try:
        return getattr(field_def, _PLAN)  # type: ignore[no-any-return]
    except AttributeError:
        pass
    field_type = field_def.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    basic = getattr(field_def.resolve, "_is_default", False)  # Strawberry's attribute read
    plan = None
    if basic and not field_def.args and isinstance(inner, GraphQLScalarType | GraphQLEnumType):
        plan = (inner, non_null)  # a leaf (what `is_leaf_type` checks), read as an attribute
    setattr(field_def, _PLAN, plan)
    return plan


class PlainLeavesExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, resolving plain leaf fields without graphql-core's per-field
    machinery (see the module's docstring)."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        middleware = self.middleware_manager
        plain = not node.arguments and (middleware is None or not middleware.middlewares)
        field_def = self.schema.get_field(parent_type, node.name.value) if plain else None
        plan = _plan(field_def) if field_def is not None else None
        if plan is not None:
            leaf_type, non_null = plan
            try:
                value = field_def.resolve(source, None)  # type: ignore[union-attr, misc]
                if value is None or value is Undefined:
                    if not non_null:
                        return None
                else:
                    return self.complete_leaf_value(leaf_type, value)
            except Exception:  # noqa: S110  # graphql-core's path below raises it properly
                pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
