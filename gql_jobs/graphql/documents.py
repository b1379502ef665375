"""The GraphQL document pipeline: size limit, parsing, our limits, validation, and a cache of verdicts.

Every operation, over HTTP GET or POST, SSE or a WebSocket, comes through `DocumentChecker.check`
(see `schema.GuardedSchema`), cheapest refusal first, so that no document within the limits
costs more than a few milliseconds of the event loop, with or without an API key:

1. its size in UTF-8 bytes (`max_document_bytes`), before anything reads it: lexing a 4.5 MB
   comment took 4 s, and its cache entry kept 9 MB;
2. parsing, bounded in tokens (and by graphql-core in nesting);
3. depth, aliases and cost, measured in one linear pass (`measure.py`);
4. graphql-core's rules, whose pairwise field comparisons (`OverlappingFieldsCanBeMergedRule`)
   get a budget of `VALIDATION_BUDGET` instead of graphql-core's 500,000 units (a second here:
   `{ tasks { name } tasks { name } ... }` within 2,000 tokens), and with suggestions ("Did you
   mean ...") hidden when introspection is off.

Verdicts of documents up to `cache_entry_bytes` are kept in an LRU bounded in estimated bytes of
memory, not in entries: a parsed document weighs several hundred bytes per token. Within the same
budget, a passing document's shape keeps its verdict (`shapes.py`) and a template of it
(`templates.py`): on the short path, a new document of that shape is derived from the template,
neither parsed nor kept.

Every error made here carries `extensions.code`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gql_jobs.errors import ErrorCode
from gql_jobs.graphql.measure import DocumentMeasure, Pricing, measure
from gql_jobs.graphql.shapes import Shape, matches, pinned_literals, shape_of
from gql_jobs.graphql.templates import Template, scan
from gql_jobs.graphql.validation import fast_rules

DOCUMENT_TOO_LARGE = ErrorCode.DOCUMENT_TOO_LARGE.value
QUERY_TOO_DEEP = ErrorCode.QUERY_TOO_DEEP.value
TOO_MANY_ALIASES = ErrorCode.TOO_MANY_ALIASES.value
QUERY_TOO_COMPLEX = ErrorCode.QUERY_TOO_COMPLEX.value
PARSE_FAILED = ErrorCode.GRAPHQL_PARSE_FAILED.value
VALIDATION_FAILED = ErrorCode.GRAPHQL_VALIDATION_FAILED.value
#: Variables that do not coerce (given at execution, see `schema.CodedExecutor`).
BAD_USER_INPUT = ErrorCode.BAD_USER_INPUT.value

#: Units of graphql-core's field-comparison budget one document may spend (each ~2 µs here):
#: the documents we send spend none; repeating one field hundreds of times spends it all.
VALIDATION_BUDGET = 5_000
#: Estimated memory of a cached document per token of it, and per entry (measured with
#: tracemalloc on graphql-core 3.3: 400 to 630 bytes per token, locations included).
TOKEN_BYTES = 700
ENTRY_BYTES = 1024
#: A shape's template per token of its document (tracemalloc: 300-520 bytes, as the document).
TEMPLATE_TOKEN_BYTES = 800


@dataclass(frozen=True)
class Limits:
    max_document_bytes: int
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_cost: int
    pricing: Pricing
    #: No "Did you mean ..." in errors (set when introspection is off: they leak the schema).
    hide_suggestions: bool
    extra_rules: tuple[type[ASTValidationRule], ...] = ()


@dataclass(frozen=True)
class Checked:
    """A document's verdict: its AST (None if it was refused before or while parsing), its errors,
    and what it costs a tenant (checked per request, since the caller is not part of the verdict)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    tenant_cost: int = 0
    weight: int = ENTRY_BYTES
    #: For a shape's entry (see `shapes.py`): the literals its documents must have verbatim,
    pinned: tuple[tuple[int, str], ...] = ()
    #: and the passing document its documents are derived from (see `templates.py`), if any.
    template: Template | None = None


#: A cache key: a query's text, or ("shape", a passing document's shape text).
Key = str | tuple[str, str]


class DocumentCache:
    """Verdicts by query text (and passing shapes, see `shapes.py`), least recently used first
    out, within `budget_bytes` of estimated memory; documents over `entry_bytes` (UTF-8) are not
    kept at all."""

    def __init__(self, budget_bytes: int, entry_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.entry_bytes = entry_bytes
        self.total_bytes = 0
        self.hits = 0
        self.misses = 0
        #: Misses answered with a document derived from its shape's (see `templates.py`).
        self.derived = 0
        self._entries: OrderedDict[Key, Checked] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, query: Key) -> bool:
        return query in self._entries

    def get(self, query: Key) -> Checked | None:
        checked = self._entries.get(query)
        if checked is None:
            self.misses += 1
        else:
            self.hits += 1
            self._entries.move_to_end(query)
        return checked

    def shape(self, key: tuple[str, str]) -> Checked | None:
        """A shape's entry, not counted in `hits`/`misses` (those count documents)."""
        checked = self._entries.get(key)
        if checked is not None:
            self._entries.move_to_end(key)
        return checked

    def discard(self, key: Key) -> None:
        checked = self._entries.pop(key, None)
        if checked is not None:
            self.total_bytes -= checked.weight

    def put(self, query: Key, size: int, checked: Checked) -> None:
        if size > self.entry_bytes or checked.weight > self.budget_bytes or query in self._entries:
            return
        self._entries[query] = checked
        self.total_bytes += checked.weight
        while self.total_bytes > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.total_bytes -= evicted.weight


class DocumentChecker:
    """Parses and validates documents against `limits`, each distinct one once while cached."""

    def __init__(self, schema: GraphQLSchema, limits: Limits, cache: DocumentCache) -> None:
        self.schema = schema
        self.limits = limits
        self.cache = cache
        self.rules = fast_rules(
            (
                *specified_rules,
                MaybeNullValidationRule,  # what Strawberry's own validation adds
                OneOfInputValidationRule,
                *limits.extra_rules,
            )
        )
        # graphql-core reads this module attribute when each validation starts (its documented knob).
        overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = VALIDATION_BUDGET

    def check(self, query: str, *, derive: bool = False) -> Checked:
        """The document's verdict. With `derive`, a passing document of a shape seen before may be
        derived from that shape's (its locations then carry no tokens: see `templates.py`)."""
        size = utf8_size(query, self.limits.max_document_bytes)
        if size > self.limits.max_document_bytes:
            return Checked(None, (too_large(self.limits.max_document_bytes),))
        checked = self.cache.get(query)
        if checked is None:
            checked = self._derived(query) if derive else None
            if checked is None:
                checked = self._check(query, size)
                self.cache.put(query, size, checked)
        return checked

    def _derived(self, query: str) -> Checked | None:
        """The verdict of a document of a shape that passed with the same pinned literals, with
        the document derived from that shape's template; None when there is none. It is not
        kept: deriving it again costs less than the cache entry it would push out."""
        scanned = scan(query)
        if scanned is None or scanned.token_count > self.limits.max_tokens:
            return None
        passed = self.cache.shape(("shape", scanned.shape.text))
        if passed is None or passed.template is None or not matches(scanned.shape, passed.pinned):
            return None
        self.cache.derived += 1
        return Checked(passed.template.derive(query, scanned), (), passed.tenant_cost)

    def over_budget(self, checked: Checked, *, tenant: bool) -> tuple[GraphQLError, ...]:
        """The cost refusal for a tenant (an admin's cost was checked with the verdict)."""
        if tenant and checked.tenant_cost > self.limits.max_cost:
            return (too_complex(checked.tenant_cost, self.limits.max_cost),)
        return ()

    def _check(self, query: str, size: int) -> Checked:
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLSyntaxError as error:
            return Checked(None, (coded(error, PARSE_FAILED),), weight=ENTRY_BYTES + 2 * size)
        measured = measure(document, self.limits.pricing)
        errors = self._limit_errors(measured) or self._validate(document, query, size, measured)
        weight = ENTRY_BYTES + 2 * size + TOKEN_BYTES * token_count(document)
        return Checked(document, errors, measured.tenant_cost, weight)

    def _validate(
        self, document: DocumentNode, query: str, size: int, measured: DocumentMeasure
    ) -> tuple[GraphQLError, ...]:
        """graphql-core's rules, once per shape of passing document (see `shapes.py`)."""
        shape = shape_of(document)
        if shape is not None:
            passed = self.cache.shape(("shape", shape.text))
            if passed is not None and matches(shape, passed.pinned):
                return ()
        errors = tuple(
            coded(e, QUERY_TOO_COMPLEX if isinstance(e, ValidationAbortedError) else VALIDATION_FAILED)
            for e in validate(
                self.schema, document, self.rules, hide_suggestions=self.limits.hide_suggestions
            )
        )
        if shape is not None and not errors:
            self._keep_shape(document, query, shape, size, measured.tenant_cost)
        return errors

    def _keep_shape(
        self, document: DocumentNode, query: str, shape: Shape, size: int, tenant_cost: int
    ) -> None:
        """Keeps a passing document's shape: its pinned literals, and a template of it. Its cost
        is its documents' (the only literals it reads, `first:`/`last:`, are pinned `Int`s)."""
        pinned = pinned_literals(self.schema, document, shape)
        template = Template.of(document, query, shape)
        weight = ENTRY_BYTES + 2 * len(shape.text) + sum(2 * len(value) + 64 for _, value in pinned)
        if template is not None:
            weight += TEMPLATE_TOKEN_BYTES * token_count(document)
        key = ("shape", shape.text)
        self.cache.discard(key)  # a shape seen before with other pinned values
        self.cache.put(key, size, Checked(None, (), tenant_cost, weight, pinned, template))

    def _limit_errors(self, measured: DocumentMeasure) -> tuple[GraphQLError, ...]:
        """Depth, aliases and (an admin's) cost: a document over them is not validated further."""
        limits = self.limits
        errors = [
            too_deep(operation, m.deepest, limits.max_depth)
            for operation, m in measured.operations.items()
            if m.depth > limits.max_depth
        ]
        if measured.aliases > limits.max_aliases:
            errors.append(too_many_aliases(measured.aliases, limits.max_aliases))
        if measured.cost > limits.max_cost:
            errors.append(too_complex(measured.cost, limits.max_cost))
        return tuple(errors)


def utf8_size(query: str, limit: int) -> int:
    """The query's size in UTF-8 bytes; any number over `limit` when it is obviously larger."""
    if len(query) > limit:
        return len(query)  # at least one byte per character: no need to encode megabytes
    return len(query.encode("utf-8", "surrogatepass"))


def token_count(document: DocumentNode) -> int:
    """Tokens of a parsed document, comments included: the AST keeps them all, linked."""
    token = document.loc.start_token if document.loc else None
    count = 0
    while token is not None:
        count += 1
        token = token.next
    return count


def coded(error: GraphQLError, code: str) -> GraphQLError:
    """`error` with `extensions.code` set, unless it has one."""
    if "code" not in (error.extensions or {}):
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def too_large(limit: int) -> GraphQLError:
    return GraphQLError(
        f"The GraphQL document is larger than {limit} bytes; send large values as variables.",
        extensions={"code": DOCUMENT_TOO_LARGE, "limitBytes": limit},
    )


def too_deep(operation: OperationDefinitionNode, deepest: FieldNode | None, limit: int) -> GraphQLError:
    """Strawberry's message, at the deepest field."""
    name = operation.name.value if operation.name else "anonymous"
    return GraphQLError(
        f"'{name}' exceeds maximum operation depth of {limit}",
        deepest or operation,
        extensions={"code": QUERY_TOO_DEEP, "limit": limit},
    )


def too_many_aliases(count: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"{count} aliases found. Allowed: {limit}",
        extensions={"code": TOO_MANY_ALIASES, "limit": limit},
    )


def too_complex(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"Query cost {cost} exceeds the limit of {limit} (a jobs page costs its size times the "
        "fields it selects, plus the entries a filtered scan may read; a bulk action, the jobs it may "
        "act on plus a scan)",
        extensions={"code": QUERY_TOO_COMPLEX, "cost": cost, "limit": limit},
    )
