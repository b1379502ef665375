"""`jobs` pages read summaries only when their jobs select nothing a summary lacks, holding the
fields their jobs select (`gql_jobs.graphql.projection`), and answer exactly what whole reads
answer, field by field."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient
from rq import Queue

from gql_jobs.auth import Principal
from gql_jobs.domain import SUMMARY_FIELDS as RECORD_SUMMARY_FIELDS
from gql_jobs.domain import JobFilter, Page, PageRequest, RecordFields
from gql_jobs.graphql.projection import RECORD_FIELDS_OF
from gql_jobs.graphql.schema import build_schema
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.store.reads import summary_hash_fields
from gql_jobs.store.rq_format import SERIALIZER
from tests.graphql_helpers import data, submit

pytestmark = pytest.mark.integration

#: The `Job` fields a summary cannot answer: their record fields are left out of it.
NEEDS_WHOLE = {"payload", "result", "error"}

EVERY_SUMMARY_FIELD = """
  id status rawStatus task queue meta tags description submittedAt createdAt enqueuedAt startedAt
  endedAt progress { current total message } retriesLeft timeout workerName resultExpiresAt
  dependsOn { id payload } attempts { outcome } position __typename
"""


def test_every_job_field_is_known_to_be_summary_safe_or_not(settings: Settings) -> None:
    """A field added to `Job` must be placed in one of the two sets (a new one reads whole jobs
    until it is: this test says which)."""
    job_type = build_schema(settings)._schema.type_map["Job"]
    assert set(job_type.fields) | {"__typename"} == set(RECORD_FIELDS_OF) | NEEDS_WHOLE  # type: ignore[attr-defined]
    assert not set(RECORD_FIELDS_OF) & NEEDS_WHOLE
    # Each names record fields a summary holds (the store knows which hash fields hold them).
    for fields in RECORD_FIELDS_OF.values():
        assert set(fields) <= RECORD_SUMMARY_FIELDS
        summary_hash_fields(frozenset(fields))


@pytest.fixture
def summaries(
    client: TestClient, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> list[RecordFields | None]:
    """The record fields each `jobs` page the app lists is read with (None: whole jobs)."""
    seen: list[RecordFields | None] = []
    listed = service.list_jobs

    async def spy(
        caller: Principal | None,
        job_filter: JobFilter,
        page: PageRequest,
        summary: RecordFields | None = None,
    ) -> Page:
        seen.append(summary)
        return await listed(caller, job_filter, page, summary=summary)

    monkeypatch.setattr(service, "list_jobs", spy)
    return seen


def kinds(summaries: list[RecordFields | None]) -> list[bool]:
    """Whether each page listed was read as summaries."""
    return [summary is not None for summary in summaries]


@pytest.mark.parametrize(
    ("selection", "summary"),
    [
        ("edges { node { id status task submittedAt progress { current } } }", True),
        ("pageInfo { hasNextPage } totalCount", True),
        (f"edges {{ cursor node {{ {EVERY_SUMMARY_FIELD} }} }}", True),
        ("edges { node { id result } }", False),
        ("edges { node { id done: payload } }", False),
        ("edges { node { ...Parts } }", False),
        ("edges { node { ... on Job { error { message } } } }", False),
        ("edges { node { id ... on Node { id } } } more: edges { node { result } }", False),
        ("edges { node { id result @skip(if: true) } }", False),  # errs towards reading more
    ],
)
def test_a_page_reads_summaries_only_when_its_jobs_need_nothing_more(
    client: TestClient, summaries: list[RecordFields | None], selection: str, summary: bool
) -> None:
    fragment = "fragment Parts on Job { id payload }" if "...Parts" in selection else ""
    data(client, f"{{ jobs(first: 5) {{ {selection} }} }} {fragment}")
    assert kinds(summaries) == [summary]


def test_a_summary_page_answers_what_a_whole_page_answers(
    client: TestClient,
    redis_client: redis.Redis,
    drain: Callable[..., None],
    summaries: list[RecordFields | None],
) -> None:
    submit(client, "echo", payload={"n": 1}, tags=["a"])
    submit(client, "fail", payload={"message": "boom"})
    queued = submit(client, "echo", payload={"n": 2})
    drain()
    submit(client, "echo", dependsOn=[queued["id"]])
    foreign = Queue("default", connection=redis_client, serializer=SERIALIZER).enqueue("builtins.len", [1])
    page = f"edges {{ cursor node {{ {EVERY_SUMMARY_FIELD} }} }} pageInfo {{ hasNextPage endCursor }}"

    for arguments, size in (("first: 10", 4), (f'filter: {{ids: ["{foreign.id}"]}}', 1)):  # RQ's own job
        assert_summaries_answer_as_whole_jobs(client, arguments, page, size)
    assert kinds(summaries) == [True, False, True, False]


def assert_summaries_answer_as_whole_jobs(client: TestClient, arguments: str, page: str, size: int) -> None:
    """The page `jobs(arguments) { page }` (read as summaries) answers what it answers with each
    job's `result` added (read whole), less the results; `size` jobs."""
    summarised = data(client, f"{{ jobs({arguments}) {{ {page} }} }}")
    whole = data(client, f"{{ jobs({arguments}) {{ {page} edges {{ node {{ result }} }} }} }}")
    for edge in whole["jobs"]["edges"]:
        del edge["node"]["result"]
    assert summarised == whole
    assert len(summarised["jobs"]["edges"]) == size


def test_a_whole_page_still_carries_payloads_results_and_errors(
    client: TestClient, drain: Callable[..., None], summaries: list[RecordFields | None]
) -> None:
    submit(client, "echo", payload={"n": 1})
    submit(client, "fail", payload={"message": "boom"})
    drain()
    page = data(client, "{ jobs(first: 2) { edges { node { task payload result error { message } } } } }")
    failed, finished = (edge["node"] for edge in page["jobs"]["edges"])
    assert finished == {"task": "echo", "payload": {"n": 1}, "result": {"n": 1}, "error": None}
    assert failed["task"] == "fail" and failed["payload"] == {"message": "boom"}
    assert failed["error"]["message"].endswith("boom")
    assert kinds(summaries) == [False]


def test_a_dashboard_page_reads_the_fields_its_jobs_select(
    client: TestClient, summaries: list[RecordFields | None]
) -> None:
    data(
        client,
        "{ jobs(first: 5) { edges { cursor node { id status task submittedAt progress { current } } } } }",
    )
    data(client, "{ jobs(first: 5) { edges { node { __typename id } } pageInfo { hasNextPage } } }")
    data(client, "{ jobs(first: 5) { edges { node { position resultExpiresAt } } } }")
    assert summaries == [
        frozenset({"status", "task", "submitted_at", "progress"}),
        frozenset(),
        frozenset({"status", "queue", "result_expires_at"}),
    ]
    # The hash fields read: what those need, and what a listing itself reads (filters, tenancy).
    assert summary_hash_fields(frozenset({"status", "task"}))[0] == (
        "status",
        "meta",
        "origin",
        "gql_jobs_owner",
        "created_at",
    )
    assert "ended_at" in summary_hash_fields(frozenset({"result_expires_at"}))[0]


#: How each summary field is selected on its own.
SELECTIONS = {
    "progress": "progress { current total fraction message updatedAt }",
    "dependsOn": "dependsOn { id payload }",
    "attempts": "attempts { outcome }",
}
PROGRESS = {"current": 2, "total": 4, "message": "half", "updated_at": "2026-12-04T01:02:03+00:00"}


@pytest.fixture
def jobs_of_every_kind(
    client: TestClient, redis_client: redis.Redis, drain: Callable[..., None]
) -> list[str]:
    """Finished (tags, a result TTL), failed, queued with a dependent, with progress, and RQ's own
    (listed by id only): their ids."""
    ids = [submit(client, "echo", payload={"n": 1}, tags=["a", "b"], resultTtl=600)["id"]]
    ids.append(submit(client, "fail", payload={"message": "boom"})["id"])
    drain()
    ids.append(submit(client, "echo", payload={"n": 2}, description="waits")["id"])
    ids.append(submit(client, "echo", dependsOn=[ids[-1]])["id"])
    ids.append(submit(client, "echo", payload={"n": 3})["id"])
    queue = Queue("default", connection=redis_client, serializer=SERIALIZER)
    job = queue.fetch_job(ids[-1])
    assert job is not None
    job.meta["progress"] = PROGRESS
    job.save_meta()  # type: ignore[no-untyped-call]
    ids.append(queue.enqueue("builtins.len", [1]).id)
    return ids


@pytest.mark.parametrize("field", sorted(set(RECORD_FIELDS_OF) - {"__typename"}))
def test_each_field_of_a_summary_answers_what_a_whole_read_answers(
    client: TestClient, summaries: list[RecordFields | None], jobs_of_every_kind: list[str], field: str
) -> None:
    """Selected alone: a field reading fewer hash fields than it needs would answer null here.
    Listed from the index, and by ids (RQ's own job is listed only so)."""
    selection = SELECTIONS.get(field, field)
    ids = ", ".join(f'"{job_id}"' for job_id in jobs_of_every_kind)
    for arguments, size in (("first: 10", 5), (f"filter: {{ids: [{ids}]}}", 6)):
        assert_summaries_answer_as_whole_jobs(client, arguments, f"edges {{ node {{ {selection} }} }}", size)
    assert kinds(summaries) == [True, False, True, False]
