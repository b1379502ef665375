"""`jobs` pages read summaries only when their jobs select nothing a summary lacks
(`gql_jobs.graphql.projection`), and answer exactly what whole reads answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient
from rq import Queue

from gql_jobs.auth import Principal
from gql_jobs.domain import JobFilter, Page, PageRequest
from gql_jobs.graphql.projection import SUMMARY_FIELDS
from gql_jobs.graphql.schema import build_schema
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
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
    assert set(job_type.fields) | {"__typename"} == SUMMARY_FIELDS | NEEDS_WHOLE  # type: ignore[attr-defined]
    assert not SUMMARY_FIELDS & NEEDS_WHOLE


@pytest.fixture
def reads(client: TestClient, service: JobService, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each `jobs` page the app lists is read as summaries."""
    seen: list[bool] = []
    listed = service.list_jobs

    async def spy(
        caller: Principal | None, job_filter: JobFilter, page: PageRequest, summary: bool = False
    ) -> Page:
        seen.append(summary)
        return await listed(caller, job_filter, page, summary=summary)

    monkeypatch.setattr(service, "list_jobs", spy)
    return seen


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
    client: TestClient, reads: list[bool], selection: str, summary: bool
) -> None:
    fragment = "fragment Parts on Job { id payload }" if "...Parts" in selection else ""
    data(client, f"{{ jobs(first: 5) {{ {selection} }} }} {fragment}")
    assert reads == [summary]


def test_a_summary_page_answers_what_a_whole_page_answers(
    client: TestClient, redis_client: redis.Redis, drain: Callable[..., None], reads: list[bool]
) -> None:
    submit(client, "echo", payload={"n": 1}, tags=["a"])
    submit(client, "fail", payload={"message": "boom"})
    queued = submit(client, "echo", payload={"n": 2})
    drain()
    submit(client, "echo", dependsOn=[queued["id"]])
    foreign = Queue("default", connection=redis_client, serializer=SERIALIZER).enqueue("builtins.len", [1])
    page = f"edges {{ cursor node {{ {EVERY_SUMMARY_FIELD} }} }} pageInfo {{ hasNextPage endCursor }}"

    for arguments, size in (("first: 10", 4), (f'filter: {{ids: ["{foreign.id}"]}}', 1)):  # RQ's own job
        summarised = data(client, f"{{ jobs({arguments}) {{ {page} }} }}")
        whole = data(client, f"{{ jobs({arguments}) {{ {page} edges {{ node {{ result }} }} }} }}")
        for edge in whole["jobs"]["edges"]:
            del edge["node"]["result"]
        assert summarised == whole
        assert len(summarised["jobs"]["edges"]) == size
    assert reads == [True, False, True, False]


def test_a_whole_page_still_carries_payloads_results_and_errors(
    client: TestClient, drain: Callable[..., None], reads: list[bool]
) -> None:
    submit(client, "echo", payload={"n": 1})
    submit(client, "fail", payload={"message": "boom"})
    drain()
    page = data(client, "{ jobs(first: 2) { edges { node { task payload result error { message } } } } }")
    failed, finished = (edge["node"] for edge in page["jobs"]["edges"])
    assert finished == {"task": "echo", "payload": {"n": 1}, "result": {"n": 1}, "error": None}
    assert failed["task"] == "fail" and failed["payload"] == {"message": "boom"}
    assert failed["error"]["message"].endswith("boom")
    assert reads == [False]
