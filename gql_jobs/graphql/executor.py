"""graphql-core's executor, with a short path for plain leaf fields (issue #20).

A page of 50 jobs is hundreds of fields like `Job.status` or `Edge.cursor`: Strawberry resolves
them by reading an attribute (a "basic" field: no resolver, no permission class, no field
extension; any of those takes graphql-core's path), but graphql-core still makes a `Path`, builds
a `GraphQLResolveInfo`, looks up arguments and walks `complete_value` for
each one, which was most of a page's execution. For such a field (a scalar or enum, possibly
non-null, without arguments, no middleware) `execute_fields` here reads the attribute and coerces
it in its own loop over the object's fields, and `__typename` (which Apollo Client adds to every
selection) is the parent type's name, as graphql-core's meta field answers. A plain field of an
object type (`JobEdge.node`, `Job.progress`) has its selection executed directly on the value, as
`complete_object_value` would, without the `GraphQLResolveInfo` in between (Strawberry's
`is_type_of` is an `isinstance` that ignores it). A plain list of objects (`JobConnection.edges`)
has its items' fields collected once and each item's selection executed directly, as
`complete_iterable_value` would item by item. Every other field goes through graphql-core's
`execute_field` as before. Which of these paths each field of a selection takes is worked out
once per request (`PlainLeavesExecutor._steps`): the 50 edges and nodes of a page share theirs.

Anything unusual (a null for a non-null field, a value the scalar refuses, an exception) goes back
through graphql-core's own `execute_field`, which raises and locates the error exactly as before:
reading an attribute and coercing a value have no side effects, so doing it twice is harmless.

An executor also leaves no garbage cycle behind (`PlainLeavesExecutor.async_helpers`): graphql-core
3.3 keeps the helpers it hands resolvers (`info.async_helpers`) as bound methods of the executor
on the executor itself, so every executor, and all it holds (the context, the variables, the
collected fields: about 50 objects per request), could only be freed by the cyclic garbage
collector. Its collections were 8-10% of the CPU of a `job(id)` or `submitJob` under 16 concurrent
requests (35 of 410 us, 50 of 650 measured in-process), against none for the bare-ASGI floor.

`execute_fields` is graphql-core's (3.3) loop with the short path added; it overrides a method
graphql-core documents as private, and calls its private `collect_subfields`, `handle_field_error`
and `settle_in_background`, hence the version cap and `tests/graphql/test_executor.py`,
which holds the answers, nulls and error paths to graphql-core's own executor.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import EnumType
from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel, is_awaitable
from graphql.type.definition import GraphQLResolveInfoHelpers
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_string
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

#: Attribute of a `GraphQLObjectType` holding its fields' plans by name (computed once each).
_PLANS = "_gql_jobs_leaf_plans"


class _Leaf(NamedTuple):
    """How to answer a plain leaf field: read `attribute` (or call `resolve`), then `coerce`."""

    attribute: str | None  # the Python attribute when Strawberry's resolver is a plain `getattr`
    resolve: Callable[..., Any]
    coerce: Callable[[Any], Any]
    non_null: bool
    #: The type whose values `coerce` answers unchanged (a `str` for String and ID, a `bool` for
    #: Boolean: graphql-core's own coercions), not worth a call; None for other scalars.
    exact: type | None = None


class _Object(NamedTuple):
    """How to answer a plain field of an object type: read it, then execute its selection on it."""

    attribute: str | None
    resolve: Callable[..., Any]
    object_type: GraphQLObjectType
    field_type: Any  # as declared, for `handle_field_error`
    non_null: bool


class _Objects(NamedTuple):
    """How to answer a plain list of objects (`JobConnection.edges`): read it, then execute the
    selection on each item, as `complete_iterable_value` does item by item."""

    attribute: str | None
    resolve: Callable[..., Any]
    object_type: GraphQLObjectType
    field_type: Any  # as declared, for `handle_field_error`
    item_type: Any  # as declared (non-null or not), for `handle_field_error`
    non_null: bool


_Plan = _Leaf | _Object | _Objects


def _plan(field_def: GraphQLField) -> _Plan | None:
    field_type = field_def.type
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
    resolve = field_def.resolve
    if resolve is None or not getattr(resolve, "_is_default", False):  # Strawberry's attribute read
        return None
    if field_def.args:
        return None
    definition = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or not definition.is_basic_field:
        return None  # a permission class or a field extension must run: graphql-core's path
    attribute = definition.python_name if definition.default_resolver is getattr else None
    if isinstance(inner, GraphQLList):
        item_type = inner.of_type
        item = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not isinstance(item, GraphQLObjectType):
            return None
        return _Objects(attribute, resolve, item, field_type, item_type, non_null)
    if isinstance(inner, GraphQLObjectType):
        return _Object(attribute, resolve, inner, field_type, non_null)
    if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
        return _Leaf(
            attribute, resolve, _coercion(inner), non_null, _UNCHANGED.get(inner.coerce_output_value)
        )
    return None


#: graphql-core's coercions that answer a value of this exact type as it is.
_UNCHANGED: dict[Callable[[Any], Any], type] = {
    serialize_string: str,
    serialize_id: str,
    serialize_boolean: bool,
}


def _coercion(leaf_type: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """How a leaf's value is coerced: the type's own `coerce_output_value`, except for a
    Strawberry enum, whose own walks every value of the enum comparing `.value` (a Python enum
    property) for each field of each item of a page. The member's name is looked up instead; a
    value that is not one of its members goes through Strawberry's coercion as before."""
    coerce = leaf_type.coerce_output_value
    members = getattr(leaf_type, "wrapped_cls", None)
    if not isinstance(leaf_type, GraphQLEnumType) or not isinstance(members, EnumType):
        return coerce
    names: dict[Any, str] = {}
    member: Any
    for member in members:  # the first name whose value matches, as Strawberry's loop answers
        name = next((n for n, v in leaf_type.values.items() if v.value == member.value), None)
        if name is not None:
            names[member] = name

    def coerce_member(value: Any) -> Any:
        name = names.get(value) if type(value) is members else None
        return coerce(value) if name is None else name

    return coerce_member


def _plans_of(parent_type: GraphQLObjectType) -> dict[str, _Plan | None]:
    try:
        return getattr(parent_type, _PLANS)  # type: ignore[no-any-return]
    except AttributeError:
        plans = {name: _plan(field) for name, field in parent_type.fields.items()}
        setattr(parent_type, _PLANS, plans)
        return plans


#: No short path at all (a middleware wants to see every field).
_NO_PLANS: dict[str, _Plan | None] = {}

#: `_answer`'s "not on the short path": graphql-core's `execute_field` answers (or raises) instead.
_SLOW: Any = object()


def _read(plan: _Plan, source: Any) -> Any:
    return getattr(source, plan.attribute) if plan.attribute is not None else plan.resolve(source, None)


#: Types of values that are neither an exception nor awaitable (no need to ask).
_PLAIN_VALUES = frozenset({str, int, float, bool})


def _answer(plan: _Leaf, source: Any) -> Any:
    """The field's value, coerced, or `_SLOW` for anything unusual (see the module's docstring)."""
    try:
        value = _read(plan, source)
        if type(value) is plan.exact:
            return value
        if value is None or value is Undefined:
            return _SLOW if plan.non_null else None
        if type(value) not in _PLAIN_VALUES and (isinstance(value, Exception) or is_awaitable(value)):
            return _SLOW  # graphql-core raises the one as the field's error and awaits the other
        coerced = plan.coerce(value)
    except Exception:  # graphql-core's path raises it properly
        return _SLOW
    return _SLOW if coerced is None or coerced is Undefined else coerced


#: Selections whose steps a request keeps (a document has a few; a page of 50 jobs, three).
STEP_CACHE_SIZE = 64

#: What `execute_fields` does with a field (`_Step.kind`).
_TYPENAME, _PLAIN_LEAF, _PLAIN_NESTED, _FULL_PATH = range(4)


class _Step(NamedTuple):
    """One field of a selection, as `execute_fields` answers it (see `PlainLeavesExecutor._steps`)."""

    response_name: str
    field_details_list: Any
    kind: int
    plan: Any  # the field's `_Plan`, for the plain kinds


async def _gathered(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    """`results` with its awaitable fields awaited (in parallel when several), as graphql-core's."""
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results


class PlainLeavesExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, resolving plain leaf fields without graphql-core's per-field
    machinery (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Each selection's steps, by (parent type, id of its grouped field set), the set kept
        #: alive with them so that its id is not reused during the request (as graphql-core
        #: memoizes the sets themselves). A subscription's events are executed by shallow
        #: copies of one context (graphql-core's `build_per_event_executor`), each with sets of
        #: its own: bounded at `STEP_CACHE_SIZE` entries, or it would grow with every event.
        self._step_cache: dict[tuple[GraphQLObjectType, int], tuple[Any, list[_Step]]] = {}

    @property
    def async_helpers(self) -> GraphQLResolveInfoHelpers:
        """graphql-core's helpers for resolvers (`info.async_helpers`), made when a field's info
        is built rather than kept: kept, their bound methods made the executor a reference cycle
        (see the module's docstring). Equal either way: `gather_async_work` uses nothing of the
        executor, and `track_async_work` only the state its copies share (`background_futures`)."""
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    @async_helpers.setter
    def async_helpers(self, _helpers: GraphQLResolveInfoHelpers) -> None:
        """graphql-core's `__init__` assigns them: nothing is kept (see the getter)."""

    def _steps(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step]:
        """How each field of a selection is answered, worked out once per request: every item of a
        list (every edge and node of a page) has the same selection, hence the same steps."""
        key = (parent_type, id(grouped_field_set))
        cache = self._step_cache
        cached = cache.get(key)
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        if len(cache) >= STEP_CACHE_SIZE:  # a subscription's events share the cache: see above
            cache.clear()
        middleware = self.middleware_manager
        plans = _plans_of(parent_type) if middleware is None or not middleware.middlewares else _NO_PLANS
        steps: list[_Step] = []
        for response_name, field_details_list in grouped_field_set.items():
            node = field_details_list[0].node
            name = node.name.value
            plan = plans.get(name)
            if name == "__typename" and plans is not _NO_PLANS:  # Apollo asks it of every object
                kind = _TYPENAME
            elif plan is None or node.arguments:
                kind = _FULL_PATH
            else:
                kind = _PLAIN_LEAF if isinstance(plan, _Leaf) else _PLAIN_NESTED
            steps.append(_Step(response_name, field_details_list, kind, plan))
        cache[key] = (grouped_field_set, steps)
        return steps

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for step in self._steps(parent_type, grouped_field_set):
                response_name, field_details_list, kind, plan = step
                answer = (
                    _answer(plan, source_value)
                    if kind == _PLAIN_LEAF
                    else self._not_leaf(step, parent_type, source_value, path, position_context)
                )
                if answer is _SLOW:
                    answer = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                    if answer is Undefined:
                        continue
                elif kind != _PLAIN_NESTED:  # a coerced leaf (or a type's name) is never awaitable
                    results[response_name] = answer
                    continue
                results[response_name] = answer
                if is_awaitable(answer):  # an object's selection may have async resolvers
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:  # settle what other fields started, as graphql-core does
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gathered(results, awaitable_fields)

    def _not_leaf(
        self,
        step: _Step,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        position_context: Any,
    ) -> Any:
        """The short answer of a step that is not a plain leaf, or `_SLOW`."""
        if step.kind == _TYPENAME:
            return parent_type.name  # as graphql-core's meta field answers
        if step.kind != _PLAIN_NESTED:
            return _SLOW
        field_path = Path(path, step.response_name, parent_type.name)
        if isinstance(step.plan, _Objects):
            return self._objects(step.plan, source, step.field_details_list, field_path, position_context)
        return self._object(step.plan, source, step.field_details_list, field_path, position_context)

    def _objects(
        self, plan: _Objects, source: Any, field_details_list: Any, path: Path, position_context: Any
    ) -> Any:
        """A plain list of objects: each item's selection executed directly, as
        `complete_iterable_value` and `complete_list_item_value` do, its sub-fields collected once
        for all items (graphql-core memoizes them per item). `_SLOW`, before anything runs, for
        anything unusual: a value that is not a list or tuple, an item that is null, an exception,
        awaitable or of another type, `@stream`, or `@defer` inside (incremental delivery plans
        its own groups)."""
        if position_context is not None or any(d.node.directives for d in field_details_list):
            return _SLOW  # inside a deferred fragment, or `@stream` (or any directive) on the field
        object_type = plan.object_type
        try:
            items = _read(plan, source)
            if items is None or items is Undefined:
                return _SLOW if plan.non_null else None
            if type(items) is not list and type(items) is not tuple:
                return _SLOW  # graphql-core's path takes any iterable, or raises
            is_type_of = object_type.is_type_of
            for item in items:
                if item is None or isinstance(item, Exception) or self.is_awaitable(item):
                    return _SLOW
                if is_type_of is not None and is_type_of(item, None) is not True:  # type: ignore[arg-type]
                    return _SLOW
            grouped_field_set, new_defer_usages, _forbidden = self.collect_subfields(
                object_type, field_details_list
            )
            if new_defer_usages:
                return _SLOW
        except Exception:
            return _SLOW
        try:
            return self._completed_items(plan, items, grouped_field_set, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.field_type, field_details_list, path)
            return None

    def _completed_items(
        self, plan: _Objects, items: Any, grouped_field_set: Any, field_details_list: Any, path: Path
    ) -> Any:
        """The items' answers, an item's error handled as `complete_list_item_value` handles it
        (null the item, or raise for non-null items: the list's error)."""
        object_type = plan.object_type
        execute_fields = self.execute_fields
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                try:
                    answer = execute_fields(object_type, item, item_path, grouped_field_set, None)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, plan.item_type, field_details_list, item_path)
                    answer = None
                if is_awaitable(answer):
                    answer = self._awaited(answer, plan.item_type, field_details_list, item_path)
                    awaitable_indices.append(index)
                completed.append(answer)
        except Exception:
            if awaitable_indices:  # settle what other items started, as graphql-core does
                self.settle_in_background([completed[index] for index in awaitable_indices])
            raise
        if not awaitable_indices:
            return completed
        return self._gathered_items(completed, awaitable_indices, plan, field_details_list, path)

    async def _gathered_items(
        self,
        completed: list[Any],
        awaitable_indices: list[int],
        plan: _Objects,
        field_details_list: Any,
        path: Path,
    ) -> Any:
        """`completed` with its awaitable items awaited, as `complete_iterable_value`'s; a non-null
        item's error nulls the list as `execute_field`'s awaited completion does."""
        try:
            awaited = await gather_with_cancel(*(completed[index] for index in awaitable_indices))
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.field_type, field_details_list, path)
            return None
        for index, value in zip(awaitable_indices, awaited, strict=True):
            completed[index] = value
        return completed

    def _object(
        self, plan: _Object, source: Any, field_details_list: Any, path: Path, position_context: Any
    ) -> Any:
        """A plain field of an object type: its value's selection executed directly, as
        `complete_object_value` does once `execute_field` has built a `GraphQLResolveInfo` (the
        part this skips); `_SLOW` for anything unusual. Strawberry's `is_type_of` ignores its
        `info` argument (it is an `isinstance`), so it is called without one; an error in the
        selection is handled as `execute_field` handles it (null the field, or raise for non-null)."""
        object_type = plan.object_type
        try:
            value = _read(plan, source)
            if value is None or value is Undefined:
                return _SLOW if plan.non_null else None
            if isinstance(value, Exception) or self.is_awaitable(value):
                return _SLOW  # graphql-core raises the one as the field's error and awaits the other
            is_type_of = object_type.is_type_of
            if is_type_of is not None and is_type_of(value, None) is not True:  # type: ignore[arg-type]
                return _SLOW  # graphql-core's path raises the invalid-type error
        except Exception:
            return _SLOW
        try:
            completed = self.collect_and_execute_subfields(
                object_type, field_details_list, path, value, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.field_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._awaited(completed, plan.field_type, field_details_list, path)
        return completed

    async def _awaited(self, completed: Any, field_type: Any, field_details_list: Any, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_type, field_details_list, path)
            return None
