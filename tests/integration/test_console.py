# ruff: noqa: F811 (the fixtures imported below are parameters of the same name, as pytest wants)
"""The job console's views in a real browser (issue #17): a job's own page, paging, bulk actions,
the queues, workers and charts pages, two widths and two themes, and /docs offline.

The same set-up as test_browser.py (its fixtures, imported: headless Debian Chromium driven by
Playwright, a real `gql-jobs serve` and `gql-jobs worker`, every request not to them blocked, the
page's CSP violations and errors failing the test). Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import wait_for
from tests.integration.test_browser import (  # noqa: F401 (fixtures)
    ADMIN_KEY,
    ARTIFACTS,
    WAIT_S,
    Server,
    Traffic,
    browser,
    page,
    server,
    shot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on SubmitJobSuccess { job { id } } } }"""
DELETE = "mutation ($id: ID!) { deleteJob(id: $id) { __typename } }"
JOB = """query ($id: ID!) { job(id: $id) { id status enqueuedAt endedAt error { message } } }"""
WITH_KEY = f"sessionStorage.setItem('gql-jobs:api-key', {json.dumps(ADMIN_KEY)})"
#: Everything at these widths must fit without a horizontal scrollbar.
WIDTHS = (1280, 420)


def submit(server: Server, count: int, **input_: Any) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        batch = [input_] * min(100, count - len(ids))
        results = server.gql(SUBMIT_MANY, inputs=batch)["submitJobs"]
        assert all(r["__typename"] == "SubmitJobSuccess" for r in results), results
        ids.extend(r["job"]["id"] for r in results)
    return ids


def job(server: Server, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = server.gql(JOB, id=job_id)["job"]
    return found


def wait_status(server: Server, job_id: str, status: str) -> dict[str, Any]:
    wait_for(lambda: job(server, job_id)["status"] == status, timeout=WAIT_S)
    return job(server, job_id)


def row_ids(tab: Page) -> list[str]:
    ids: list[str] = tab.evaluate(
        "[...document.querySelectorAll('#jobs tbody tr')].map((r) => r.dataset.jobId)"
    )
    return ids


def rows_are(tab: Page, expected: list[str]) -> None:
    wait_for(lambda: row_ids(tab) == expected, timeout=WAIT_S)


def fits(tab: Page) -> bool:
    return bool(tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def fact(tab: Page, name: str) -> Locator:
    return tab.locator(f'#job-body dd[data-fact="{name}"]')


# -- one job's page ---------------------------------------------------------------------------------


def test_a_failed_job_has_its_own_page_with_its_traceback_and_requeue(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    tag = f"detail-{uuid.uuid4().hex[:8]}"
    [job_id] = submit(server, 1, task="fail", payload={"message": "it broke on purpose"}, tags=[tag])
    failed = wait_status(server, job_id, "FAILED")

    tab.add_init_script(WITH_KEY)
    tab.goto(f"{server.url}/console?tag={tag}")
    tab.get_by_role("status").filter(has_text="Live").wait_for()
    tab.locator(f'tr[data-job-id="{job_id}"]').get_by_role("link").click()  # the row opens the job
    tab.wait_for_url(f"{server.url}/console/jobs/{job_id}")
    body = tab.locator('#job-body[data-status="FAILED"]')
    body.wait_for()
    assert tab.locator("#job-id").inner_text() == job_id
    # A date and a time at each step: submitted, enqueued, started, ended.
    steps = tab.locator(".timeline li.done time")
    assert steps.count() == 4
    assert all(len(t.split()) == 2 and t[4] == "-" for t in steps.all_inner_texts()), steps.all_inner_texts()
    assert "it broke on purpose" in tab.locator(".error-message").inner_text()
    traceback = tab.locator("#job-traceback").inner_text()
    assert "Traceback" in traceback and "it broke on purpose" in traceback
    tab.get_by_role("button", name="Copy traceback").click()
    tab.get_by_role("button", name="Copied").wait_for()
    assert tab.evaluate("navigator.clipboard.readText()") == traceback
    assert json.loads(tab.locator("#job-payload").inner_text()) == {"message": "it broke on purpose"}
    assert fact(tab, "tags").inner_text() == tag
    assert fact(tab, "worker").inner_text() != "—"
    shot(tab, "console-job-failed.png")

    tab.locator(".job-head").get_by_role("button", name="Requeue").click()
    refused = tab.locator("#job-error")

    def requeued_or_refused() -> bool:
        return refused.is_visible() or job(server, job_id)["enqueuedAt"] > failed["endedAt"]

    wait_for(requeued_or_refused, timeout=WAIT_S)
    assert not refused.is_visible(), refused.inner_text()  # a refusal is shown, not silent
    tab.locator('#job-body[data-status="FAILED"] .timeline li[data-step="ended"].done').wait_for()
    # The page is a URL: opening it afresh shows the same job, now with both of its runs.
    wait_for(lambda: job(server, job_id)["endedAt"] > failed["endedAt"], timeout=WAIT_S)
    tab.reload()
    tab.locator('#job-body[data-status="FAILED"]').wait_for()
    assert tab.locator("#job-attempts tbody tr").count() == 2
    assert fact(tab, "attempts").inner_text() == "2"
    traffic.check(tab)


def test_an_action_the_api_refuses_is_shown_on_the_job_s_page(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    [job_id] = submit(server, 1, task="fail", payload={"message": "refused"})
    wait_status(server, job_id, "FAILED")
    tab.goto(f"{server.url}/console/jobs/{job_id}")
    tab.locator('#job-body[data-status="FAILED"]').wait_for()
    deleted = server.gql(DELETE, id=job_id)["deleteJob"]  # gone behind the page's back
    assert deleted["__typename"] == "DeleteJobSuccess", deleted
    tab.locator(".job-head").get_by_role("button", name="Requeue").click()
    shown = tab.locator("#job-error", has_text="not done")
    shown.wait_for()
    assert shown.inner_text().startswith(f"Requeue {job_id}: not done ("), shown.inner_text()
    # It can be tried again.
    assert tab.locator(".job-head").get_by_role("button", name="Requeue").is_enabled()
    traffic.check(tab)


def test_a_running_job_s_page_is_live_and_search_by_id_opens_it(
    page: tuple[Page, Traffic], server: Server, tmp_path: Path
) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    [job_id] = submit(server, 1, task="gated_steps", payload={"gate": str(tmp_path), "steps": 2})
    wait_status(server, job_id, "STARTED")
    tab.goto(f"{server.url}/console")
    tab.get_by_role("status").filter(has_text="Live").wait_for()
    tab.keyboard.press("/")  # the shortcut to the search box
    tab.keyboard.type(job_id)
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{server.url}/console/jobs/{job_id}")
    tab.locator('#job-body[data-status="STARTED"]').wait_for()
    (tmp_path / "1").touch()
    fact(tab, "progress").filter(has_text="50%").wait_for()
    (tmp_path / "2").touch()
    tab.locator('#job-body[data-status="FINISHED"]').wait_for()
    assert json.loads(tab.locator("#job-result").inner_text()) == {"steps": 2}

    tab.goto(f"{server.url}/console/jobs/JOB-no-such-job")
    tab.locator("#job-missing").wait_for()
    traffic.check(tab)


def test_keyboard_moves_through_rows_and_opens_one(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    queue = f"keys-{uuid.uuid4().hex[:8]}"
    ids = submit(server, 3, task="echo", payload={}, queue=queue)
    tab.goto(f"{server.url}/console?queue={queue}")
    rows_are(tab, ids[::-1])
    tab.locator("body").press("j")
    tab.keyboard.press("j")
    assert tab.locator("#jobs tbody tr.current").get_attribute("data-job-id") == ids[1]
    tab.keyboard.press("k")
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{server.url}/console/jobs/{ids[2]}")
    tab.go_back()
    rows_are(tab, ids[::-1])
    traffic.check(tab)


# -- the list: paging, filters in the URL, bulk actions --------------------------------------------


def test_the_list_pages_with_cursors_kept_in_the_url(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    queue = f"paging-{uuid.uuid4().hex[:8]}"  # no worker serves it: the jobs stay QUEUED
    newest_first = submit(server, 120, task="echo", payload={}, queue=queue)[::-1]
    tab.goto(f"{server.url}/console?queue={queue}")
    rows_are(tab, newest_first[:50])
    assert tab.locator("#jobs-count").inner_text() == "(50 of 120)"
    assert tab.locator("#filter-queue").input_value() == queue
    assert tab.get_by_role("button", name="← Newer").is_disabled()
    tab.locator("#status-counts a[data-status=QUEUED]", has_text="120").wait_for()  # admins see counts

    tab.get_by_role("button", name="Older →").click()
    rows_are(tab, newest_first[50:100])
    assert "after=" in tab.url and f"queue={queue}" in tab.url
    tab.get_by_role("button", name="Older →").click()
    rows_are(tab, newest_first[100:])
    assert tab.get_by_role("button", name="Older →").is_disabled()
    shot(tab, "console-page-3.png")

    tab.reload()  # a page is a URL
    rows_are(tab, newest_first[100:])
    tab.get_by_role("button", name="← Newer").click()
    rows_are(tab, newest_first[50:100])
    tab.get_by_role("button", name="← Newer").click()
    rows_are(tab, newest_first[:50])
    wait_for(lambda: tab.get_by_role("button", name="← Newer").is_disabled(), timeout=WAIT_S)
    tab.go_back()  # history follows the pages
    rows_are(tab, newest_first[50:100])

    # A time range, kept in the URL like the other filters.
    tab.goto(f"{server.url}/console?queue={queue}&submittedAfter=2999-01-01T00:00:00.000Z")
    tab.locator("#jobs-empty", has_text="No jobs match.").wait_for()
    assert tab.locator("#filter-after").input_value()[:4] in ("2998", "2999")  # local time
    tab.locator("#filter-after").fill("")
    tab.locator("#filter-after").dispatch_event("change")
    rows_are(tab, newest_first[:50])
    assert "submittedAfter" not in tab.url
    traffic.check(tab)


def test_bulk_requeue_of_the_failed_jobs_asks_first(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    tag = f"bulk-{uuid.uuid4().hex[:8]}"
    ids = submit(server, 3, task="fail", payload={"message": "bulk"}, tags=[tag])
    failures = {job_id: wait_status(server, job_id, "FAILED")["endedAt"] for job_id in ids}
    [survivor] = submit(server, 1, task="echo", payload={}, tags=[tag])
    wait_status(server, survivor, "FINISHED")

    tab.goto(f"{server.url}/console?status=FAILED&tag={tag}")
    wait_for(lambda: sorted(row_ids(tab)) == sorted(ids), timeout=WAIT_S)
    assert tab.locator("#filter-status").input_value() == "FAILED"
    assert tab.locator("#filter-tag").input_value() == tag
    tab.get_by_label("Select every job on this page").check()
    tab.locator("#bulk-count", has_text="3 selected").wait_for()

    tab.get_by_role("button", name="Requeue selected").click()
    tab.locator("#confirm", has_text="Requeue 3 selected jobs?").wait_for()
    shot(tab, "console-bulk-confirm.png")
    tab.get_by_role("button", name="Keep them").click()  # asked, declined: nothing happens
    assert all(job(server, i)["enqueuedAt"] < failures[i] for i in ids)

    tab.get_by_role("button", name="Requeue selected").click()
    tab.get_by_role("button", name="Go ahead").click()
    tab.locator("#bulk-status", has_text="Requeue: 3 done.").wait_for()
    wait_for(lambda: all(job(server, i)["enqueuedAt"] > failures[i] for i in ids), timeout=WAIT_S)
    assert job(server, survivor)["status"] == "FINISHED"

    # Again, this time every job matching the filters (one bulk mutation over the filter).
    wait_for(lambda: all(job(server, i)["status"] == "FAILED" for i in ids), timeout=WAIT_S)
    again = {i: job(server, i)["endedAt"] for i in ids}
    tab.reload()
    wait_for(lambda: sorted(row_ids(tab)) == sorted(ids), timeout=WAIT_S)
    tab.get_by_label(f"Select job {ids[0]}").check()
    tab.get_by_label("all matching the filters").check()
    tab.get_by_role("button", name="Requeue selected").click()
    tab.locator("#confirm", has_text="Requeue every matching job?").wait_for()  # FAILED: no cheap count
    tab.get_by_role("button", name="Go ahead").click()
    tab.locator("#bulk-status", has_text="Requeue: 3 done.").wait_for()
    wait_for(lambda: all(job(server, i)["enqueuedAt"] > again[i] for i in ids), timeout=WAIT_S)
    assert job(server, survivor)["status"] == "FINISHED"
    traffic.check(tab)


def test_bulk_delete_removes_the_selected_rows(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    queue = f"delete-{uuid.uuid4().hex[:8]}"
    ids = submit(server, 3, task="echo", payload={}, queue=queue)
    tab.goto(f"{server.url}/console?queue={queue}")
    rows_are(tab, ids[::-1])
    for job_id in ids[:2]:
        tab.get_by_label(f"Select job {job_id}").check()
    tab.get_by_role("button", name="Delete selected").click()
    tab.get_by_role("button", name="Go ahead").click()
    rows_are(tab, [ids[2]])
    assert server.gql(JOB, id=ids[0])["job"] is None
    traffic.check(tab)


# -- queues, workers, charts, widths, themes ---------------------------------------------------------


def test_queues_workers_and_charts_pages(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    queue = f"charted-{uuid.uuid4().hex[:8]}"
    queued = submit(server, 2, task="echo", payload={}, queue=queue)
    [done] = submit(server, 1, task="echo", payload={})
    wait_status(server, done, "FINISHED")

    tab.goto(f"{server.url}/console/queues")
    queue_row = tab.locator(f'#queues tr[data-queue="{queue}"]')
    queue_row.wait_for()
    queue_row.get_by_role("link", name="2", exact=True).click()  # its QUEUED count opens the list, filtered
    tab.wait_for_url(f"**/console?queue={queue}&status=QUEUED")
    wait_for(lambda: len(row_ids(tab)) == 2, timeout=WAIT_S)

    tab.get_by_role("link", name="Queues").click()
    queue_row.get_by_role("button", name=f"Empty queue {queue}").click()
    tab.locator("#confirm", has_text=f"Delete the 2 jobs waiting on queue {queue}?").wait_for()
    tab.get_by_role("button", name="Go ahead").click()
    queue_row.get_by_role("button", name=f"Empty queue {queue}").wait_for(state="detached")
    assert [job(server, i) for i in queued] == [None, None]

    tab.get_by_role("link", name="Workers").click()
    tab.locator("#workers tbody tr[data-worker]").first.wait_for()
    assert tab.locator("#workers tbody tr").count() >= 1
    try:
        tab.get_by_role("button", name="Suspend workers").click()
        tab.get_by_role("button", name="Go ahead").click()
        tab.locator("#workers-suspension", has_text="suspended").wait_for()
        assert server.gql("{ workersSuspended }")["workersSuspended"] is True
        tab.get_by_role("button", name="Resume workers").click()
        tab.locator("#workers-suspension", has_text="taking jobs").wait_for()
    finally:
        server.gql("mutation { resumeWorkers { __typename } }")  # the other tests need the worker
    assert server.gql("{ workersSuspended }")["workersSuspended"] is False

    tab.get_by_role("link", name="Charts").click()
    tab.locator('body[data-charts="drawn"]').wait_for()
    assert tab.locator(".charts canvas").count() == 3
    assert "submitted" in tab.locator("#charts-totals").inner_text()
    assert tab.locator(".u-legend").first.is_visible()
    shot(tab, "console-charts.png")
    traffic.check(tab)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_view_fits_the_width_in_both_themes(
    page: tuple[Page, Traffic], server: Server, tmp_path: Path, width: int
) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    tab.set_viewport_size({"width": width, "height": 900})
    [failed] = submit(server, 1, task="fail", payload={"message": "x" * 300}, tags=["wide"])
    [running] = submit(server, 1, task="gated_steps", payload={"gate": str(tmp_path), "steps": 2})
    wait_status(server, failed, "FAILED")
    wait_status(server, running, "STARTED")
    views = {
        "list": ("/console", "#jobs tbody tr"),
        "job": (f"/console/jobs/{failed}", '#job-body[data-status="FAILED"]'),
        "queues": ("/console/queues", "#queues tbody tr"),
        "workers": ("/console/workers", "#workers tbody tr"),
        "charts": ("/console/charts", 'body[data-charts="drawn"]'),
    }
    tab.goto(f"{server.url}/console")
    for theme in ("light", "dark"):
        tab.evaluate(f"localStorage.setItem('gql-jobs:theme', '{theme}')")
        for name, (path, ready) in views.items():
            tab.goto(server.url + path)
            tab.locator(ready).first.wait_for()
            assert tab.evaluate("document.documentElement.dataset.theme") == theme
            assert fits(tab), f"{name} at {width} px ({theme}) scrolls sideways"
            shot(tab, f"console-{name}-{width}-{theme}.png")
    # The row's buttons are on screen, not behind a scrollbar.
    tab.goto(f"{server.url}/console")
    cancel = tab.locator(f'tr[data-job-id="{running}"]').get_by_role("button", name=f"Cancel job {running}")
    box = cancel.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width
    (tmp_path / "1").touch()
    (tmp_path / "2").touch()
    traffic.check(tab)


#: Holds every job list's answer until the test calls `window.releaseLists()`.
HELD_LISTS = """
const realFetch = window.fetch;
let release;
const released = new Promise((resolve) => (release = resolve));
window.releaseLists = () => release();
window.fetch = async (url, init) => {
  const response = await realFetch(url, init);
  if (String(init?.body || "").includes("query Jobs")) await released;
  return response;
};
"""


def test_the_list_says_loading_until_the_first_answer(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.add_init_script(WITH_KEY)
    tab.add_init_script(HELD_LISTS)
    tab.goto(f"{server.url}/console?queue=nothing-{uuid.uuid4().hex[:8]}")
    tab.get_by_role("status").filter(has_text="Live").wait_for()
    assert tab.locator("#jobs-empty").inner_text() == "Loading…"
    tab.evaluate("window.releaseLists()")
    tab.locator("#jobs-empty", has_text="No jobs match.").wait_for()
    traffic.check(tab)


def test_without_a_key_the_console_says_one_is_needed(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.goto(f"{server.url}/console")
    tab.locator("#submit-task-description", has_text="enter an API key").wait_for()
    assert tab.locator("#submit-task option").count() == 0
    tab.get_by_role("link", name="Workers").click()
    tab.locator("#workers-note", has_text="Enter an API key").wait_for()
    # The refusals are the point here; the page itself raised nothing.
    traffic.errors = [e for e in traffic.errors if "401" not in e and "403" not in e]
    traffic.check(tab)


# -- /docs ------------------------------------------------------------------------------------------


def test_the_rest_docs_render_offline(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.goto(f"{server.url}/docs")
    tab.locator(".swagger-ui .opblock").first.wait_for()
    assert "gql-jobs" in tab.locator(".swagger-ui .title").first.inner_text()
    tab.locator(".opblock-summary", has_text="/job-status/").first.click()  # opens, under the same CSP
    tab.get_by_role("button", name="Try it out").click()
    tab.locator(".opblock-body input[placeholder='job_id']").wait_for()
    shot(tab, "docs.png")
    traffic.check(tab)
    assert ARTIFACTS.is_dir()
