"""The IDE and the console in a real browser: headless Debian Chromium driven by Playwright, against a
real `gql-jobs serve` and `gql-jobs worker` on loopback, with API keys on.

Every request the pages make is watched: anything not to the server under test is blocked and
fails the test, so "works offline, no CDN" is checked rather than assumed. Screenshots land in
test-artifacts/. Chromium comes from apt (see .ci/run); Playwright never downloads a browser. Without
Chromium (or the playwright package) the tests skip, saying why.

A frontend on another origin (last section): a page of its own (tests/integration/frontend/,
bundled with @urql/core and graphql-ws from clients/ by esbuild when the tests run) served from
another port, calling an API that lists its origin in `cors_origins`, and the same page from an
origin that is not listed. Those pages are watched without interception: Playwright answers CORS
preflights itself when it intercepts, and the preflights are the point.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from gql_jobs.app import create_app
from gql_jobs.auth import hash_key
from gql_jobs.dev import free_port
from tests.auth_helpers import api_keys_setting
from tests.conftest import ROOT, make_settings, redis_test_url, subprocess_env, wait_for
from tests.node_helpers import bundle
from tests.server_helpers import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Request, Route, WebSocket

#: Bound of every wait on the page (a condition, not a speed: generous, for a busy machine).
WAIT_S = 60

#: Per test, with the module's set-up (a server, a worker and a cold Chromium: a minute or more
#: on a loaded CI machine) counted against the first test that uses them.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

ARTIFACTS = ROOT / "test-artifacts"
ADMIN_KEY = "browser-test-admin-key"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
# Listening for CSP violations before any page script runs.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def chromium_path() -> str | None:
    """GQL_JOBS_CHROMIUM if set, else Debian's chromium."""
    chosen = os.environ.get("GQL_JOBS_CHROMIUM")
    candidates = [chosen] if chosen else [shutil.which("chromium"), "/usr/bin/chromium"]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def skip_reason() -> str | None:
    if chromium_path() is None:
        return "no Chromium found: `apt-get install chromium` (as .ci/run does) to run the browser tests"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[dev]'"
    return None


if (reason := skip_reason()) is not None:
    pytest.skip(reason, allow_module_level=True)  # reported in the summary (-ra)


@dataclass
class Server:
    url: str
    port: int

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """`gql-jobs serve` and one `gql-jobs worker`, as subprocesses, on the test Redis."""
    client = redis.Redis.from_url(redis_test_url())
    client.flushdb()
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    keys = json.dumps({hash_key(ADMIN_KEY): {"principal": "ops", "scopes": ["admin"]}})
    env = subprocess_env(
        GQL_JOBS_API_KEYS=keys,
        GQL_JOBS_POLL_INTERVAL="0.5",
        GQL_JOBS_GRAPHIQL="true",  # `serve` turns the IDE and introspection off unless asked
        GQL_JOBS_INTROSPECTION="true",
        # Not a test of Redis timeouts: a busy machine stalling the test Redis for the default 2 s
        # must not turn a click into a 503 (the fault tests set their own short ones).
        GQL_JOBS_REDIS_SOCKET_TIMEOUT="30",
    )
    processes: list[subprocess.Popen[bytes]] = []
    with (ARTIFACTS / "browser-server.log").open("wb") as log:
        for argv in (
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--graceful-timeout", "2"],
            ["worker"],
        ):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gql_jobs", *argv], env=env, cwd=ROOT, stdout=log, stderr=log
                )
            )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert all(p.poll() is None for p in processes), "server or worker exited; see the log"
            try:
                return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_for(ready, timeout=120, interval=0.2)
            wait_for(lambda: client.scard("rq:workers") > 0, timeout=120)
            yield Server(url, port)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            client.flushdb()
            client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS, timeout=180_000
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Traffic:
    """What a page asked for: everything must go to the server under test (or to `pages`, the
    origins the page itself comes from, when that is another one)."""

    origin: str
    pages: tuple[str, ...] = ()
    blocked: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)  # what the server sent over WebSockets
    errors: list[str] = field(default_factory=list)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "data" or f"{parts.scheme}://{parts.netloc}" in (self.origin, *self.pages)

    def route(self, route: Route, request: Request) -> None:
        if self.allows(request.url):
            route.continue_()
        else:
            self.blocked.append(request.url)
            route.abort("blockedbyclient")

    def watch(self, request: Request) -> None:
        """`route`'s check without intercepting (see `open_page`): the request went, and fails the test."""
        if not self.allows(request.url):
            self.blocked.append(request.url)

    def socket(self, ws: WebSocket) -> None:
        self.sockets.append(ws.url)
        ws.on("framereceived", lambda payload: self.frames.append(str(payload)))

    def job_updates(self) -> list[dict[str, Any]]:
        """The `jobUpdates` payloads the server sent, in order."""
        messages = [json.loads(frame) for frame in self.frames]
        return [
            m["payload"]["data"]["jobUpdates"]
            for m in messages
            if m.get("type") == "next" and (m.get("payload", {}).get("data") or {}).get("jobUpdates")
        ]

    def check(self, page: Page) -> None:
        assert self.blocked == [], f"requests left for other hosts: {self.blocked}"
        ws_origin = self.origin.replace("http://", "ws://")
        assert all(url.startswith(ws_origin + "/") for url in self.sockets), self.sockets
        assert page.evaluate("window.__csp") == [], "Content-Security-Policy violations"
        assert self.errors == [], f"errors in the page: {self.errors}"


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[tuple[Page, Traffic]]:
    traffic = Traffic(server.url)
    with open_page(browser, traffic, request.node.name) as tab:
        yield tab, traffic


@contextlib.contextmanager
def open_page(browser: Browser, traffic: Traffic, name: str, intercept: bool = True) -> Iterator[Page]:
    """A page in a fresh context, its traffic watched; screenshot at the end as `last-<name>.png`.

    With `intercept`, requests elsewhere are blocked before they leave. Without, they are only
    recorded: Playwright answers CORS preflights itself (allowing everything) whenever it
    intercepts requests, so a test of CORS must let the browser and the server do it for real."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport={"width": 1440, "height": 900}, service_workers="block")
    context.set_default_timeout(WAIT_S * 1000)
    if intercept:
        context.route("**/*", traffic.route)
    else:
        context.on("request", traffic.watch)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.on("websocket", traffic.socket)
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    page.on("console", lambda m: traffic.errors.append(m.text) if m.type == "error" else None)
    try:
        yield page
    finally:
        # The page as the test left it, to look at when it failed.
        with contextlib.suppress(PlaywrightError):
            page.screenshot(path=str(ARTIFACTS / f"last-{name}.png"))
        if traffic.errors or traffic.blocked:
            print(f"page errors: {traffic.errors}; blocked: {traffic.blocked}")
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


# -- GraphiQL --------------------------------------------------------------------------------------


TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"  # variables or headers
RESPONSE = ".graphiql-response .CodeMirror"


def editor(selector: str) -> str:
    """JS for the CodeMirror instance at `selector` (GraphiQL 3 edits with CodeMirror 5)."""
    return f"document.querySelector({json.dumps(selector)}).CodeMirror"


def run_operation(page: Page, name: str) -> None:
    """Put the cursor in the operation `name`, as a user clicking it would, and press Ctrl-Enter."""
    line = page.locator(".graphiql-query-editor .CodeMirror-line", has_text=name).first
    line.click(position={"x": 8, "y": 4})
    page.keyboard.press("Control+Enter")


def response_text(page: Page) -> str:
    return str(page.evaluate(f"{editor(RESPONSE)}.getValue()"))


def test_graphiql_runs_a_mutation_and_a_subscription_offline(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.goto(f"{server.url}/graphql")
    tab.locator(".graphiql-query-editor .CodeMirror-line", has_text="mutation Submit").wait_for()
    tab.get_by_role("button", name="Headers").click()
    headers = json.dumps({"Authorization": f"Bearer {ADMIN_KEY}"})
    tab.evaluate(f"{editor(TOOL_EDITOR)}.setValue({json.dumps(headers)})")

    run_operation(tab, "mutation Submit")
    wait_for(lambda: "SubmitJobSuccess" in response_text(tab), timeout=WAIT_S, interval=0.1)
    job_id = json.loads(response_text(tab))["data"]["submitJob"]["job"]["id"]
    assert job_id.startswith("JOB-")

    run_operation(tab, "subscription Follow")  # follows the job just submitted
    wait_for(lambda: "FINISHED" in response_text(tab), timeout=WAIT_S, interval=0.1)
    # What the server streamed (counted on the wire, not by sampling what the page shows).
    updates = traffic.job_updates()
    assert {u["id"] for u in updates} == {job_id}, updates
    assert updates[-1]["status"] == "FINISHED"
    assert len(updates) >= 2, f"the subscription should stream several states: {updates}"
    assert json.loads(response_text(tab))["data"]["jobUpdates"]["result"] == {"slept": 3.0}
    shot(tab, "graphiql.png")
    # The explorer plugin is there and knows the schema (introspection went through).
    tab.get_by_role("button", name="Show GraphiQL Explorer").click()
    tab.locator(".graphiql-explorer-root").get_by_text("submitJob").first.wait_for()
    shot(tab, "graphiql-explorer.png")
    assert traffic.sockets, "the subscription went over a WebSocket"
    traffic.check(tab)


def test_graphiql_without_a_key_reports_the_refusal(page: tuple[Page, Traffic], server: Server) -> None:
    tab, traffic = page
    tab.goto(f"{server.url}/graphql")
    tab.locator(".graphiql-query-editor .CodeMirror-line", has_text="subscription Follow").wait_for()
    tab.evaluate(f'{editor(TOOL_EDITOR)}.setValue(\'{{"id": "JOB-x"}}\')')
    run_operation(tab, "subscription Follow")
    wait_for(lambda: "4403" in response_text(tab), timeout=WAIT_S, interval=0.1)
    traffic.check(tab)


# -- the console -----------------------------------------------------------------------------------


def row(tab: Page, job_id: str) -> Locator:
    return tab.locator(f'tr[data-job-id="{job_id}"]')


def progress_of(tab: Page, job_id: str) -> float | None:
    value = tab.evaluate(
        """(id) => { const bar = document.querySelector(`tr[data-job-id="${id}"] progress`);
                     return bar && bar.hasAttribute("value") ? bar.value : null; }""",
        job_id,
    )
    return None if value is None else float(value)


def test_console_shows_a_job_progressing_to_the_end(
    page: tuple[Page, Traffic], server: Server, tmp_path: Path
) -> None:
    """The job (`gated_steps`) takes its next step only once the bar showed the last one, so the
    values seen do not depend on how fast the machine runs the worker, the server or the page."""
    tab, traffic = page
    tab.goto(server.url + "/")
    assert tab.url == f"{server.url}/console"
    tab.get_by_label("API key").fill(ADMIN_KEY)
    tab.get_by_role("button", name="Use key").click()
    tab.get_by_role("status").filter(has_text="Live").wait_for()

    tab.locator("#submit-form").get_by_label("Task").select_option("gated_steps")
    tab.get_by_label("Gate").fill(str(tmp_path))
    tab.get_by_label("Steps").fill("4")
    tab.get_by_label("Timeout").fill("300")  # the job's own bound on the whole test: not a race
    tab.get_by_label("Tags").fill("browser")
    tab.get_by_role("button", name="Submit", exact=True).click()
    tab.locator("#submit-status", has_text="Submitted").wait_for()
    job_id = tab.locator("#submit-status").inner_text().split()[1]
    assert job_id.startswith("JOB-")

    values: list[float] = []

    def shows(fraction: float) -> bool:
        value = progress_of(tab, job_id)
        if value is not None and (not values or values[-1] != value):
            values.append(value)
        return value == fraction

    for step in range(1, 5):
        (tmp_path / str(step)).touch()
        wait_for(lambda: shows(step / 4), timeout=WAIT_S, interval=0.05)  # noqa: B023 (called at once)
        if step == 2:
            shot(tab, "console-running.png")
    wait_for(lambda: row(tab, job_id).get_attribute("data-status") == "FINISHED", timeout=WAIT_S)
    moving = [v for v in values if 0 < v < 1]
    assert len(moving) >= 3, f"the progress bar should move through several values: {values}"
    assert moving == sorted(moving)
    assert values[-1] == 1.0
    assert row(tab, job_id).locator(".badge").inner_text() == "finished"
    assert row(tab, job_id).locator("time").count() == 3  # submitted, started, ended
    shot(tab, "console.png")
    traffic.check(tab)


def test_console_follows_jobs_submitted_elsewhere_cancels_requeues_and_filters(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.add_init_script(f"sessionStorage.setItem('gql-jobs:api-key', {json.dumps(ADMIN_KEY)})")
    tab.goto(f"{server.url}/console")
    tab.get_by_role("status").filter(has_text="Live").wait_for()

    # A job submitted by another client, on a queue no worker serves, shows up by itself.
    mutation = """mutation ($input: SubmitJobInput!) {
      submitJob(input: $input) { ... on SubmitJobSuccess { job { id } } } }"""
    input_ = {"task": "echo", "payload": {"hello": "console"}, "queue": "parked"}
    job_id = server.gql(mutation, input=input_)["submitJob"]["job"]["id"]
    row(tab, job_id).locator(".badge", has_text="queued").wait_for()

    row(tab, job_id).get_by_role("button", name=f"Cancel job {job_id}").click()
    row(tab, job_id).locator(".badge", has_text="canceled").wait_for()
    tab.locator("#announcer", has_text="canceled").wait_for()

    row(tab, job_id).get_by_role("button", name=f"Requeue job {job_id}").click()
    row(tab, job_id).locator(".badge", has_text="queued").wait_for()

    tab.locator("#filters").get_by_label("Status").select_option("FINISHED")
    row(tab, job_id).wait_for(state="detached")
    tab.locator("#filters").get_by_label("Status").select_option("")
    tab.locator("#filters").get_by_label("Queue").select_option("parked")
    row(tab, job_id).wait_for()
    # The job's row was already there: wait for the filtered list to replace the others.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: tab.locator("#jobs tbody tr").count() == 1, timeout=WAIT_S)
    assert tab.locator("#jobs tbody tr").count() == 1
    shot(tab, "console-filtered.png")

    server.gql("mutation ($id: ID!) { cancelJob(id: $id) { __typename } }", id=job_id)
    row(tab, job_id).locator(".badge", has_text="canceled").wait_for()
    traffic.check(tab)


#: Holds back the answer of every unfiltered job list once `window.holdUnfiltered` is set, until the
#: test calls `releaseHeldLists()`: the order of answers is the test's, not the machine's speed.
HOLD_UNFILTERED_LISTS = """
const realFetch = window.fetch;
window.holdUnfiltered = false;
window.heldLists = [];
window.lateAnswersDelivered = 0;
window.releaseHeldLists = () => window.heldLists.splice(0).forEach((release) => release());
window.fetch = async (url, init) => {
  const response = await realFetch(url, init);
  const body = String(init?.body || "");
  if (window.holdUnfiltered && body.includes("query Jobs") && body.includes('"filter":{}')) {
    const text = await response.text();
    await new Promise((release) => window.heldLists.push(release));
    window.lateAnswersDelivered += 1;
    const { status, statusText, headers } = response;
    return new Response(text, { status, statusText, headers });
  }
  return response;
};
"""

#: Resolves after a few turns of the page's event loop: the console has handled an answer it got.
TURNS_OF_THE_EVENT_LOOP = """async () => {
  for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
}"""


def listed_ids(tab: Page) -> list[str | None]:
    """The listed rows' ids, read in one step in the page (row by row, a re-render between reading
    the rows and their ids left a locator waiting for a row that was gone)."""
    ids: list[str | None] = tab.evaluate(
        "[...document.querySelectorAll('#jobs tbody tr')].map(r => r.getAttribute('data-job-id'))"
    )
    return ids


def test_console_renders_the_latest_filter_when_answers_arrive_out_of_order(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.add_init_script(f"sessionStorage.setItem('gql-jobs:api-key', {json.dumps(ADMIN_KEY)})")
    tab.add_init_script(HOLD_UNFILTERED_LISTS)
    mutation = """mutation ($input: SubmitJobInput!) {
      submitJob(input: $input) { ... on SubmitJobSuccess { job { id } } } }"""
    parked = server.gql(mutation, input={"task": "echo", "payload": {}, "queue": "parked-late"})
    server.gql(mutation, input={"task": "echo", "payload": {}, "queue": "elsewhere"})
    tab.goto(f"{server.url}/console")
    tab.get_by_role("status").filter(has_text="Live").wait_for()
    job_id = parked["submitJob"]["job"]["id"]
    row(tab, job_id).wait_for()

    tab.evaluate("window.holdUnfiltered = true")
    tab.locator("#filters").get_by_label("Status").select_option("QUEUED")
    tab.locator("#filters").get_by_label("Status").select_option("")  # held: unfiltered
    tab.locator("#filters").get_by_label("Queue").select_option("parked-late")  # answered, and later
    wait_for(
        lambda: tab.evaluate("window.heldLists.length") >= 1 and listed_ids(tab) == [job_id], timeout=WAIT_S
    )
    tab.evaluate("window.releaseHeldLists()")  # now the unfiltered answer comes, late
    wait_for(lambda: tab.evaluate("window.lateAnswersDelivered") >= 1, timeout=WAIT_S)
    tab.evaluate(TURNS_OF_THE_EVENT_LOOP)

    assert listed_ids(tab) == [job_id]
    traffic.check(tab)


def test_console_shows_invalid_payloads_next_to_their_field(
    page: tuple[Page, Traffic], server: Server
) -> None:
    tab, traffic = page
    tab.add_init_script(f"sessionStorage.setItem('gql-jobs:api-key', {json.dumps(ADMIN_KEY)})")
    tab.goto(f"{server.url}/console")
    tab.locator("#submit-form").get_by_label("Task").select_option("sleep")
    tab.get_by_label("Steps").fill("0")
    tab.get_by_role("button", name="Submit", exact=True).click()
    error = tab.locator('[data-field="steps"] .error')
    error.filter(has_text="greater than or equal to 1").wait_for()
    assert tab.get_by_label("Steps").get_attribute("aria-invalid") == "true"
    traffic.check(tab)


# -- a frontend on another origin ------------------------------------------------------------------

FRONTEND = Path(__file__).parent / "frontend"
FRONTEND_KEY = "key-alice"  # tests/auth_helpers.py: may submit and read
FRONTEND_QUEUE = "frontend"  # no worker serves it but the test's burst worker


@dataclass
class Seen:
    """One request the API received, and how it answered (a status, or a WebSocket's accept/close)."""

    kind: str  # "http" or "websocket"
    method: str
    path: str
    origin: str | None
    asks_headers: str | None  # a preflight's Access-Control-Request-Headers
    answer: str | None = None


class Recording:
    """ASGI wrapper keeping what the API saw: preflights never reach the page's JavaScript, and a
    refused WebSocket handshake looks the same as a dead server from there."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(
            scope["type"],
            scope.get("method", "GET"),
            scope["path"],
            headers.get("origin"),
            headers.get("access-control-request-headers"),
        )
        self.seen.append(seen)

        async def watched(message: dict[str, Any]) -> None:
            if seen.answer is None and message["type"] == "http.response.start":
                seen.answer = str(message["status"])
            elif seen.answer is None and message["type"].startswith("websocket."):
                seen.answer = message["type"].removeprefix("websocket.")
            await send(message)

        await self.app(scope, receive, watched)

    def from_(self, origin: str) -> list[Seen]:
        return [s for s in self.seen if s.origin == origin]


@contextlib.contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """`directory` served over HTTP on a loopback port of its own (another origin); yields it."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, name="test-static-site", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page and its bundle (app.source.js with @urql/core and graphql-ws from clients/), built
    into a temporary directory: nothing generated is committed."""
    site = tmp_path_factory.mktemp("frontend")
    shutil.copy(FRONTEND / "index.html", site / "index.html")
    bundle(FRONTEND / "app.source.js", site / "app.js")
    return site


@dataclass
class CrossOrigin:
    api: str  # the /graphql URL
    recording: Recording
    allowed: str  # the page origin the API lists in `cors_origins`
    other: str  # another origin, serving the same page, that it does not list

    def page_url(self, origin: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"api": self.api, "key": FRONTEND_KEY, **params}.items())
        return f"{origin}/index.html?{query}"


@pytest.fixture
def cross_origin(frontend: Path, redis_client: redis.Redis) -> Iterator[CrossOrigin]:
    """The API in a real uvicorn allowing one page origin (two static sites of the same page)."""
    with static_site(frontend) as allowed, static_site(frontend) as other:
        settings = make_settings(
            cors_origins=[allowed], api_keys=api_keys_setting(), queues=[FRONTEND_QUEUE], poll_interval=0.2
        )
        recording = Recording(create_app(settings))
        with running_server(recording) as base:
            yield CrossOrigin(f"{base}/graphql", recording, allowed, other)


def test_a_page_on_another_origin_submits_with_urql_and_follows_with_graphql_ws(
    browser: Browser, cross_origin: CrossOrigin, drain: Any, request: pytest.FixtureRequest
) -> None:
    api_origin = cross_origin.api.removesuffix("/graphql")
    traffic = Traffic(api_origin, pages=(cross_origin.allowed,))
    with open_page(browser, traffic, request.node.name, intercept=False) as tab:
        tab.goto(cross_origin.page_url(cross_origin.allowed, queue=FRONTEND_QUEUE))
        tab.locator('#status[data-status="QUEUED"]').wait_for()  # submitted, and followed
        drain(FRONTEND_QUEUE)
        tab.locator('body[data-state="done"]').wait_for()

        assert tab.locator("#status").inner_text() == "FINISHED"
        statuses = tab.locator("#statuses li").all_inner_texts()
        assert statuses[0] == "QUEUED"
        assert statuses[-1] == "FINISHED"
        assert json.loads(tab.locator("#result").inner_text()) == {"from": cross_origin.allowed}
        assert tab.locator("#error").inner_text() == ""
        traffic.check(tab)
        assert traffic.sockets == [cross_origin.api.replace("http://", "ws://")]

    seen = cross_origin.recording.from_(cross_origin.allowed)
    http = [(s.method, s.path, s.answer) for s in seen if s.kind == "http"]
    # The Authorization header made the browser ask first; the answer let the mutation through.
    assert http == [("OPTIONS", "/graphql", "200"), ("POST", "/graphql", "200")], http
    assert "authorization" in (seen[0].asks_headers or "").lower()
    sockets = [(s.path, s.answer) for s in seen if s.kind == "websocket"]
    assert sockets == [("/graphql", "accept")]


SUBMIT_ELSEWHERE = """mutation SubmitElsewhere {
  submitJob(input: {task: "echo"}) { ... on SubmitJobSuccess { job { id } } }
}"""


def test_a_page_on_an_origin_not_listed_can_neither_call_nor_subscribe(
    browser: Browser, cross_origin: CrossOrigin, redis_client: redis.Redis, request: pytest.FixtureRequest
) -> None:
    other = cross_origin.other
    api_origin = cross_origin.api.removesuffix("/graphql")
    traffic = Traffic(api_origin, pages=(other,))
    with open_page(browser, traffic, request.node.name, intercept=False) as tab:
        tab.goto(cross_origin.page_url(other, queue=FRONTEND_QUEUE))
        tab.locator('body[data-state="failed"]').wait_for()
        assert "submitJob: [Network] Failed to fetch" in tab.locator("#error").inner_text()
        assert any("has been blocked by CORS policy" in e for e in traffic.errors), traffic.errors
        assert redis_client.keys("rq:job:*") == []  # the mutation never ran

        # A job that exists, submitted elsewhere: the page may not follow it either.
        submitted = httpx.post(
            cross_origin.api,
            json={"query": SUBMIT_ELSEWHERE},
            headers={"Authorization": f"Bearer {FRONTEND_KEY}"},
        ).json()
        job_id = submitted["data"]["submitJob"]["job"]["id"]
        tab.goto(cross_origin.page_url(other, follow=job_id))
        tab.locator('body[data-state="failed"]').wait_for()
        assert tab.locator("#error").inner_text() == "jobUpdates: socket error"  # refused handshake
        assert tab.locator("#statuses li").count() == 0
        assert traffic.frames == []
        assert traffic.blocked == []

    seen = cross_origin.recording.from_(other)
    # The browser asked, got no CORS answer (Starlette's 400), and never sent the mutation.
    assert [(s.kind, s.method, s.answer) for s in seen] == [
        ("http", "OPTIONS", "400"),
        ("websocket", "GET", "close"),
    ]
