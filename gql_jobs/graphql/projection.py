"""Which reads a `jobs` page needs, from what the document selects on its jobs.

Decoding a job's arguments and outcome (`data`, the latest result, the traceback) was a third of
building a page's records, and reading them a large part of Redis's work for the page (issue
#20); a dashboard's page (`id status task submittedAt progress`) shows neither, and needs five of
a job's hash fields, not sixteen. A page whose jobs select only fields of `RECORD_FIELDS_OF` is
read as summaries holding the record fields those need (`JobRecord.summary`); any other field,
one added to `Job` later included, reads whole jobs. Fields under `@skip`/`@include` count as
selected whatever the condition: the answer errs towards reading more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from gql_jobs.domain import RecordFields
from gql_jobs.graphql.context import Info

#: `Job` fields a summary answers as a whole read would, with the `JobRecord` fields each reads;
#: `tests/graphql/test_projection.py` holds every other field of `Job` to needing a whole read,
#: and each of these to answering alone what a whole read answers.
RECORD_FIELDS_OF: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": (),
    "status": ("status",),
    "rawStatus": ("raw_status",),
    "task": ("task",),
    "queue": ("queue",),
    "meta": ("meta",),
    "tags": ("tags",),
    "description": ("description",),
    "submittedAt": ("submitted_at",),
    "createdAt": ("created_at",),
    "enqueuedAt": ("enqueued_at",),
    "startedAt": ("started_at",),
    "endedAt": ("ended_at",),
    "progress": ("progress",),
    "retriesLeft": ("retries_left",),
    "timeout": ("timeout",),
    "workerName": ("worker_name",),
    "resultExpiresAt": ("result_expires_at",),
    "dependsOn": ("depends_on",),  # reads those jobs itself, whole
    "attempts": (),  # reads the results stream itself
    "position": ("status", "queue"),
}


def page_summary(info: Info) -> RecordFields | None:
    """The record fields each job of the `jobs` page being resolved needs, when it selects only
    fields of `RECORD_FIELDS_OF` (through fragments too); `None` when it needs whole jobs."""
    nodes = (
        node.selections
        for page in info.selected_fields  # the `jobs` field itself (once per node of the document)
        for edges in _named(page.selections, "edges")
        for node in _named(edges.selections, "node")
    )
    needed: set[str] = set()
    for selections in nodes:
        for field in _fields(selections):
            fields = RECORD_FIELDS_OF.get(field.name)
            if fields is None:
                return None
            needed.update(fields)
    return frozenset(needed)


def _named(selections: Iterable[Selection], name: str) -> Iterator[SelectedField]:
    return (field for field in _fields(selections) if field.name == name)


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection set, fragments flattened (validation has refused cycles)."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)
