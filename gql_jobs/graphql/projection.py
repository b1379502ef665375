"""Which reads a `jobs` page needs, from what the document selects on its jobs.

Decoding a job's arguments and outcome (`data`, the latest result, the traceback) was a third of
building a page's records, and reading them a large part of Redis's work for the page (issue
#20); a dashboard's page (`id status task submittedAt progress`) shows neither. A page whose jobs
select only the fields of `SUMMARY_FIELDS` is read as summaries (`JobRecord.summary`); any other
field, one added to `Job` later included, reads whole jobs. Fields under `@skip`/`@include` count
as selected whatever the condition: the answer errs towards reading more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gql_jobs.graphql.context import Info

#: `Job` fields a summary answers as a whole read would (their record fields are read in full);
#: `tests/graphql/test_projection.py` holds every other field of `Job` to needing a whole read.
SUMMARY_FIELDS = frozenset(
    {
        "__typename",
        "id",
        "status",
        "rawStatus",
        "task",
        "queue",
        "meta",
        "tags",
        "description",
        "submittedAt",
        "createdAt",
        "enqueuedAt",
        "startedAt",
        "endedAt",
        "progress",
        "retriesLeft",
        "timeout",
        "workerName",
        "resultExpiresAt",
        "dependsOn",  # reads those jobs itself, whole
        "attempts",  # reads the results stream itself
        "position",  # its queue and status
    }
)


def page_needs_only_summaries(info: Info) -> bool:
    """True when the `jobs` field being resolved selects, on each job of its page, only
    `SUMMARY_FIELDS` (through fragments too)."""
    nodes = (
        node.selections
        for page in info.selected_fields  # the `jobs` field itself (once per node of the document)
        for edges in _named(page.selections, "edges")
        for node in _named(edges.selections, "node")
    )
    return all(field.name in SUMMARY_FIELDS for selections in nodes for field in _fields(selections))


def _named(selections: Iterable[Selection], name: str) -> Iterator[SelectedField]:
    return (field for field in _fields(selections) if field.name == name)


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, fragments flattened (validation has refused cycles)."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)
