"""Depth, aliases and cost of each operation of a GraphQL document, in time linear in the document.

Strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk into a fragment at every spread of
it: a document whose fragments each spread the next one twice costs 2^n walks (18 levels, under
1 kB, blocked the event loop for 9 s; 40 never returned). Here every fragment is measured once, in
dependency order, and a spread reads its fragment's measure; nested selection sets are walked with
an explicit stack, so neither fragment chains nor nesting can exhaust Python's recursion limit. A
spread that closes a fragment cycle (or names no fragment) counts as empty: graphql-core's
`NoFragmentCyclesRule` and `KnownFragmentNamesRule` report those documents anyway.

The numbers count as Strawberry's rules did, so the limits mean what they meant: depth is the
deepest field's level (`{ job { id } }` is 1; introspection fields are not descended into);
aliases are counted through fragments, once per spread, over all operations. Cost is new: every
field costs 1, and a `jobs` page costs the index entries it may read plus its page size times its
selection (each job of the page is resolved); see `Pricing`. Spreads count once each, so a
fragment spread twice costs twice (execution would merge the two: the estimate errs high).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
)

#: Filter fields that each have their own listing index (`gql_jobs.store.listing.base_key`).
DIMENSIONS = frozenset({"queue", "task", "tag"})
TIME_RANGE = frozenset({"submittedAfter", "submittedBefore"})


@dataclass(frozen=True)
class Measure:
    """What a selection set (or a whole operation) amounts to."""

    #: Level of its deepest field below the selection set's owner (0: only leaf fields).
    depth: int = 0
    #: That field, to point the error at; None for an empty selection.
    deepest: FieldNode | None = None
    aliases: int = 0
    #: Cost for an admin, whose filtered listings walk the index of one dimension.
    cost: int = 0
    #: Cost for a tenant, whose listings walk its own index: any criterion means a scan.
    tenant_cost: int = 0


EMPTY = Measure()


@dataclass(frozen=True)
class Pricing:
    """What a `jobs` field may read (see `gql_jobs.store.listing.list_jobs`).

    A page reads its size in index entries; when the index does not cover the filter, the
    listing checks criteria on the jobs and may examine `scan_budget` entries more. Page sizes
    and filters given by variables are not known when the document is validated (and its
    verdict cached): they count at their worst, the maximum page size and a scan."""

    max_page_size: int
    scan_budget: int

    def page_size(self, arguments: dict[str, ValueNode]) -> int:
        """`first`, else `last`, else the server's maximum, as the listing chooses."""
        chosen = arguments["first"] if "first" in arguments else arguments.get("last")
        if isinstance(chosen, IntValueNode):
            return min(max(int(chosen.value), 0), self.max_page_size)
        return self.max_page_size

    def scans(self, arguments: dict[str, ValueNode]) -> tuple[bool, bool]:
        """Whether the listing scans, for an admin and for a tenant."""
        node = arguments.get("filter")
        if node is None:
            return False, False
        if not isinstance(node, ObjectValueNode):
            return True, True  # a variable: assume the worst
        values = {f.name.value: f.value for f in node.fields if not isinstance(f.value, NullValueNode)}
        if "ids" in values:
            return False, False  # read by id, at most a page of them
        tags = values.get("tags")
        several_tags = tags is not None and not (isinstance(tags, ListValueNode) and len(tags.values) <= 1)
        dimensions = len(values.keys() & DIMENSIONS) + (tags is not None)
        criteria = values.keys() - TIME_RANGE  # a time range only bounds the walk
        return "status" in values or dimensions > 1 or several_tags, bool(criteria)

    def jobs(self, node: FieldNode, selection: Measure) -> tuple[int, int]:
        """The cost of a `jobs` field, for an admin and for a tenant."""
        arguments = {
            a.name.value: a.value for a in node.arguments or () if not isinstance(a.value, NullValueNode)
        }
        size = self.page_size(arguments)
        admin_scans, tenant_scans = self.scans(arguments)
        entries = max(size, 1)
        return (
            entries + self.scan_budget * admin_scans + size * selection.cost,
            entries + self.scan_budget * tenant_scans + size * selection.tenant_cost,
        )

    def nodes(self, node: FieldNode, selection: Measure) -> tuple[int, int]:
        """The cost of a `nodes` field: each id a read and a resolved selection (a variable's
        list counts at its worst, the maximum page size, which `nodes` refuses to exceed)."""
        ids = next((a.value for a in node.arguments or () if a.name.value == "ids"), None)
        count = len(ids.values) if isinstance(ids, ListValueNode) else self.max_page_size
        count = min(count, self.max_page_size)
        return count * (1 + selection.cost), count * (1 + selection.tenant_cost)


@dataclass
class DocumentMeasure:
    """Every operation's measure, and the work it took (to show it is linear)."""

    operations: dict[OperationDefinitionNode, Measure] = field(default_factory=dict)
    #: Selections and spreads looked at; at most about twice the document's selections.
    visits: int = 0

    @property
    def aliases(self) -> int:
        return sum(m.aliases for m in self.operations.values())

    @property
    def cost(self) -> int:
        return max((m.cost for m in self.operations.values()), default=0)

    @property
    def tenant_cost(self) -> int:
        return max((m.tenant_cost for m in self.operations.values()), default=0)


def measure(document: DocumentNode, pricing: Pricing) -> DocumentMeasure:
    """Measure each operation of `document`, each fragment once."""
    result = DocumentMeasure()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    spreads = {name: _spread_names(d.selection_set, result) for name, d in fragments.items()}
    measured: dict[str, Measure] = {}
    for name in _dependencies_first(fragments, spreads):
        measured[name] = _measure_selection(fragments[name].selection_set, measured, pricing, result)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            result.operations[definition] = _measure_selection(
                definition.selection_set, measured, pricing, result
            )
    return result


def _children(selection_set: SelectionSetNode) -> Iterator[SelectionSetNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
            yield selection.selection_set


def _spread_names(root: SelectionSetNode, result: DocumentMeasure) -> list[str]:
    """Names of the fragments spread anywhere under `root` (in its own definition)."""
    names: list[str] = []
    stack = [root]
    while stack:
        selection_set = stack.pop()
        result.visits += len(selection_set.selections)
        names.extend(s.name.value for s in selection_set.selections if isinstance(s, FragmentSpreadNode))
        stack.extend(_children(selection_set))
    return names


def _dependencies_first(
    fragments: dict[str, FragmentDefinitionNode], spreads: dict[str, list[str]]
) -> list[str]:
    """Fragment names, each after the fragments it spreads (an edge closing a cycle is skipped)."""
    order: list[str] = []
    seen: set[str] = set()
    for start in fragments:
        if start in seen:
            continue
        seen.add(start)
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(spreads[start]))]
        while stack:
            name, pending = stack[-1]
            following = next((n for n in pending if n in fragments and n not in seen), None)
            if following is None:
                stack.pop()
                order.append(name)
            else:
                seen.add(following)
                stack.append((following, iter(spreads[following])))
    return order


def _measure_selection(
    root: SelectionSetNode, fragments: dict[str, Measure], pricing: Pricing, result: DocumentMeasure
) -> Measure:
    """Post-order over the nested selection sets of one definition, without recursion."""
    done: dict[int, Measure] = {}
    stack: list[tuple[SelectionSetNode, bool]] = [(root, False)]
    while stack:
        selection_set, ready = stack.pop()
        if ready:
            result.visits += len(selection_set.selections)
            done[id(selection_set)] = _combine(_items(selection_set, done, fragments, pricing))
        else:
            stack.append((selection_set, True))
            stack.extend((child, False) for child in _children(selection_set))
    return done[id(root)]


def _items(
    selection_set: SelectionSetNode,
    done: dict[int, Measure],
    fragments: dict[str, Measure],
    pricing: Pricing,
) -> Iterator[Measure]:
    """The measure of each selection, its nested selection sets being measured already."""
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            yield fragments.get(selection.name.value, EMPTY)
        elif isinstance(selection, InlineFragmentNode):
            yield done[id(selection.selection_set)]
        elif isinstance(selection, FieldNode):
            inner = done[id(selection.selection_set)] if selection.selection_set else None
            yield _field(selection, inner, pricing)


def _field(node: FieldNode, inner: Measure | None, pricing: Pricing) -> Measure:
    selection = inner or EMPTY
    if inner is None or node.name.value.startswith("__"):
        depth, deepest = 0, node
    else:
        depth, deepest = 1 + inner.depth, inner.deepest or node
    aliases = (1 if node.alias else 0) + selection.aliases
    if node.name.value == "jobs":
        cost, tenant_cost = pricing.jobs(node, selection)
    elif node.name.value == "nodes":
        cost, tenant_cost = pricing.nodes(node, selection)
    else:
        cost, tenant_cost = 1 + selection.cost, 1 + selection.tenant_cost
    return Measure(depth, deepest, aliases, cost, tenant_cost)


def _combine(items: Iterable[Measure]) -> Measure:
    depth, deepest, aliases, cost, tenant_cost = 0, None, 0, 0, 0
    for item in items:
        if deepest is None or item.depth > depth:
            depth, deepest = item.depth, item.deepest
        aliases += item.aliases
        cost += item.cost
        tenant_cost += item.tenant_cost
    return Measure(depth, deepest, aliases, cost, tenant_cost)
