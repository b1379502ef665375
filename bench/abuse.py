"""`python -m bench.abuse`: what each attack of issue #13 costs the API, sent for real on loopback.

One private redis-server and one `gql-jobs serve` process (the defaults a deployment gets, plus an
API key so nothing below needs an open API), then each worst case in turn:

* documents: exponential fragment fan-out (20 and 40 levels, under 1 kB), a 4.5 MB comment, 30
  distinct large documents (what the parse cache keeps), a 1,000-deep JSON body;
* keys: a batch of jobs with many unique tags and `resultTtl: 1`, run by a worker: keys left
  without a TTL, memory left once the jobs have expired;
* live: idle jobs tracked by one `jobEvents` subscriber (API CPU per second with no traffic), and
  one principal opening many WebSockets and subscriptions (how many are accepted);
* readiness: two 30-alias `jobs(status: FAILED)` queries at once, and `/readyz` beside them;
* Redis frozen (SIGSTOP): how long each endpoint takes to answer 503.

For each it prints the answer (HTTP status and GraphQL error code), the API's CPU milliseconds,
and the longest `/healthz` answer seen by a probe running alongside: the event loop's stall. Figures
vary with the machine; the answers and the bounds (keys, counts, bytes) do not. `--quick` shrinks
the loads for the smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets

from bench.processes import wait_until
from bench.stack import Stack, cpu_seconds, worker_argv
from bench.tasks import TASK
from gql_jobs.auth import hash_key

KEY = "bench-abuse-admin-key"
TENANT_KEY = "bench-abuse-tenant-key"


class HealthProbe:
    """Asks `/healthz` in a loop on its own thread; `worst_ms` is the slowest answer seen."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.worst_ms = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as http:
            while not self._stop.is_set():
                began = time.perf_counter()
                try:
                    http.get("/healthz")
                except httpx.HTTPError:
                    self.failures += 1
                self.worst_ms = max(self.worst_ms, (time.perf_counter() - began) * 1000)
                self._stop.wait(0.01)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def measured(api_pid: int, base_url: str, row: dict[str, Any]) -> Iterator[None]:
    """Fill `row` with the API's CPU ms and the worst `/healthz` latency over the block."""
    before = cpu_seconds(api_pid)
    began = time.perf_counter()
    with HealthProbe(base_url) as probe:
        yield
    row["wall_ms"] = round((time.perf_counter() - began) * 1000, 1)
    row["api_cpu_ms"] = round((cpu_seconds(api_pid) - before) * 1000, 1)
    row["healthz_worst_ms"] = round(probe.worst_ms, 1)


def answer(response: httpx.Response) -> str:
    """`400 QUERY_TOO_DEEP`: the status, then the first GraphQL error code, the result's
    `__typename`, or the REST body's keys."""
    what = ""
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError, AttributeError):
        body = response.json()
        if body.get("errors"):
            what = (body["errors"][0].get("extensions") or {}).get("code", "no code")
        elif isinstance(body.get("data"), dict):
            roots = [v for v in body["data"].values() if isinstance(v, dict) and "__typename" in v]
            what = roots[0]["__typename"] if roots else "data"
        else:
            what = "{" + ",".join(body) + "}"
    return f"{response.status_code} {what}".strip()


def fan_out_document(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ tasks {{ name }} }}")
    return "query { ...F0 }\n" + "\n".join(fragments)


def deep_json(levels: int) -> str:
    return '{"query": "{ tasks { name } }", "variables": ' + '{"a":' * levels + "1" + "}" * levels + "}"


class Bench:
    def __init__(self, stack: Stack, quick: bool) -> None:
        self.stack = stack
        self.quick = quick
        api = stack.apis["ours-1p"]
        self.base_url = api.base_url
        self.pid = api.proc.process.pid
        self.http = httpx.Client(
            base_url=self.base_url, timeout=120, headers={"Authorization": f"Bearer {KEY}"}
        )
        self.rows: list[dict[str, Any]] = []

    def graphql(self, query: str, variables: dict[str, Any] | None = None, key: str = KEY) -> httpx.Response:
        body = {"query": query, "variables": variables or {}}
        return self.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"})

    def case(self, name: str, send: Callable[[], str], repeat: int = 1, **extra: Any) -> dict[str, Any]:
        """Send it `repeat` times (CPU is counted in clock ticks: repeat what is cheap)."""
        row: dict[str, Any] = {"case": name, **extra}
        with measured(self.pid, self.base_url, row):
            try:
                row["answer"] = ", ".join(sorted({send() for _ in range(repeat)}))
            except httpx.TimeoutException:
                row["answer"] = "no answer in 120 s"
        if repeat > 1:
            row["requests"] = repeat
            row["api_cpu_ms_per_request"] = round(row["api_cpu_ms"] / repeat, 2)
        self.rows.append(row)
        return row

    # -- documents --------------------------------------------------------------------------------

    def documents(self) -> None:
        for levels in (20, 40):
            document = fan_out_document(levels)
            self.case(
                f"fragment fan-out, {levels} levels",
                lambda d=document: answer(self.graphql(d)),  # type: ignore[misc]
                repeat=20,
                bytes=len(document),
            )
        huge = "# " + "x" * (4_500_000 if not self.quick else 500_000) + "\n{ tasks { name } }"
        self.case("one huge comment", lambda: answer(self.graphql(huge)), repeat=5, bytes=len(huge))
        rss_before = psutil.Process(self.pid).memory_info().rss
        size = 30_000 if not self.quick else 3_000

        def distinct() -> str:
            answers = set()
            for i in range(30):
                padding = f"# {i} " + "y" * size + "\n"
                answers.add(answer(self.graphql(padding + "{ tasks { name } }")))
            return ", ".join(sorted(answers))

        row = self.case("30 distinct large documents", distinct, bytes=30 * size)
        row["rss_growth_kb"] = (psutil.Process(self.pid).memory_info().rss - rss_before) // 1024
        body = deep_json(1000)
        self.case(
            "1,000-deep JSON body",
            lambda: answer(
                self.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
            ),
            repeat=20,
            bytes=len(body),
        )

    # -- keys -------------------------------------------------------------------------------------

    def keys(self) -> None:
        client = self.stack.client()
        jobs = 100 if self.quick else 500
        mutation = "mutation($in: [SubmitJobInput!]!) { submitJobs(inputs: $in) { __typename } }"
        tags = int(os.environ.get("BENCH_ABUSE_TAGS", "10"))
        inputs = [
            {"task": TASK, "payload": {}, "resultTtl": 1, "tags": [f"t{i}-{j}" for j in range(tags)]}
            for i in range(jobs)
        ]
        used_before = int(client.info("memory")["used_memory"])
        row = self.case(
            f"{jobs} jobs x {tags} unique tags, resultTtl 1",
            lambda: ",".join(
                sorted(
                    {
                        r["__typename"]
                        for r in self.graphql(mutation, {"in": inputs}).json()["data"]["submitJobs"]
                    }
                )
            ),
        )
        code, _ = self.stack.run_to_end("burst-worker", worker_argv(self.stack.redis_url, "gql"), 300)
        row["worker_exit"] = code
        jobs_left = lambda: not any(True for _ in client.scan_iter("rq:job:*", count=1000))  # noqa: E731
        deadline = time.monotonic() + 60
        while not jobs_left() and time.monotonic() < deadline:
            time.sleep(0.2)  # the jobs expire by their 1 s TTL: wait for it, bounded
        ours = list(client.scan_iter("gql_jobs:*", count=1000))
        row["keys_ours"] = len(ours)
        row["keys_without_ttl"] = sum(1 for k in ours if client.ttl(k) == -1)
        row["rq_keys_without_ttl"] = sum(
            1 for k in client.scan_iter("rq:*", count=1000) if client.ttl(k) == -1
        )
        row["memory_left_kb"] = (int(client.info("memory")["used_memory"]) - used_before) // 1024
        client.close()

    # -- live -------------------------------------------------------------------------------------

    async def _subscribe(self, url: str, key: str, count: int) -> tuple[Any, int]:
        """A WebSocket with `count` jobEvents subscriptions; how many were accepted."""
        ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if ack.get("type") != "connection_ack":
            await ws.close()
            return None, 0
        for i in range(count):
            message = {
                "id": str(i),
                "type": "subscribe",
                "payload": {"query": "subscription { jobEvents { type } }"},
            }
            await ws.send(json.dumps(message))
        # Refusals come back at once; an accepted subscription says nothing until an event arrives.
        refused = 0
        with contextlib.suppress(TimeoutError):
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                # A refusal is an `error` message, or (Strawberry, limits) `next` with errors then `complete`.
                refused += reply.get("type") == "error" or bool((reply.get("payload") or {}).get("errors"))
        return ws, count - refused

    def idle_polling(self) -> None:
        url = self.base_url.replace("http", "ws") + "/graphql"
        jobs = 1000 if self.quick else 10_000

        async def run() -> dict[str, Any]:
            ws, accepted = await self._subscribe(url, KEY, 1)
            mutation = "mutation($in: [SubmitJobInput!]!) { submitJobs(inputs: $in) { __typename } }"
            batch = [{"task": TASK, "queue": "unserved"} for _ in range(100)]
            async with httpx.AsyncClient(base_url=self.base_url, timeout=120) as http:
                for _ in range(jobs // 100):
                    body = {"query": mutation, "variables": {"in": batch}}
                    await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {KEY}"})
            # A benchmark, not a test: figures over fixed windows. The first holds the work the
            # submissions' events cause (one read each); the later ones are what idle costs.
            windows = []
            for _ in range(3):
                before = cpu_seconds(self.pid)
                await asyncio.sleep(5)
                windows.append(round((cpu_seconds(self.pid) - before) / 5 * 100, 1))
            await ws.close()
            return {
                "subscriptions": accepted,
                "api_cpu_percent_first_5s": windows[0],
                "api_cpu_percent_idle": min(windows[1:]),
            }

        self.rows.append({"case": f"{jobs} idle QUEUED jobs + 1 jobEvents subscriber", **asyncio.run(run())})

    def fan_out(self) -> None:
        url = self.base_url.replace("http", "ws") + "/graphql"
        sockets, per_socket = (20, 20) if self.quick else (200, 100)

        async def run() -> dict[str, Any]:
            opened = []
            accepted = 0
            for _ in range(sockets):
                try:
                    ws, n = await self._subscribe(url, TENANT_KEY, per_socket)
                except (websockets.WebSocketException, OSError):
                    ws, n = None, 0
                if ws is not None:
                    opened.append(ws)
                accepted += n
            rss = psutil.Process(self.pid).memory_info().rss // (1024 * 1024)
            submit = 'mutation { submitJob(input: {task: "bench_noop", queue: "unserved"}) { __typename } }'
            latencies = []
            async with httpx.AsyncClient(base_url=self.base_url, timeout=120) as http:
                for _ in range(20):
                    began = time.perf_counter()
                    await http.post(
                        "/graphql", json={"query": submit}, headers={"Authorization": f"Bearer {KEY}"}
                    )
                    latencies.append((time.perf_counter() - began) * 1000)
            for ws in opened:
                await ws.close()
            latencies.sort()
            return {
                "websockets_accepted": len(opened),
                "subscriptions_accepted": accepted,
                "api_rss_mb": rss,
                "submit_p50_ms": round(latencies[len(latencies) // 2], 1),
            }

        asked = f"{sockets} WebSockets x {per_socket} jobEvents, one principal"
        self.rows.append({"case": asked, **asyncio.run(run())})

    # -- readiness --------------------------------------------------------------------------------

    def readiness(self) -> None:
        for count, first in ((30, 100), (4, 10)):  # the query, then the most the budget admits
            self._readiness(count, first)

    def _readiness(self, count: int, first: int) -> None:
        """Two scanning queries at once, and `/readyz` asked beside them."""
        aliases = " ".join(
            f"a{i}: jobs(first: {first}, filter: {{status: FAILED}}) {{ edges {{ cursor }} }}"
            for i in range(count)
        )
        query = "{ " + aliases + " }"
        row: dict[str, Any] = {"case": f"2 x {count}-alias jobs(first: {first}, status: FAILED) + /readyz"}
        with measured(self.pid, self.base_url, row):
            results: list[str] = []
            threads = [
                threading.Thread(target=lambda: results.append(answer(self.graphql(query)))) for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            began = time.perf_counter()
            ready = self.http.get("/readyz")
            row["readyz_ms"] = round((time.perf_counter() - began) * 1000, 1)
            row["readyz"] = ready.status_code
            for thread in threads:
                thread.join()
            row["answer"] = ", ".join(sorted(set(results)))
        self.rows.append(row)

    # -- Redis frozen -----------------------------------------------------------------------------

    def frozen(self) -> None:
        assert self.stack.redis_proc is not None
        redis_pid = self.stack.redis_proc.process.pid
        job = self.graphql(
            'mutation { submitJob(input: {task: "bench_noop"}) { ... on SubmitJobSuccess { job { id } } } }'
        )
        job_id = job.json()["data"]["submitJob"]["job"]["id"]
        calls: dict[str, Callable[[], httpx.Response]] = {
            "REST submit": lambda: self.http.post("/submit-job", json={"task": TASK, "payload": {}}),
            "REST status": lambda: self.http.get(f"/job-status/{job_id}"),
            "submitJob": lambda: self.graphql(
                'mutation { submitJob(input: {task: "bench_noop"}) { __typename } }'
            ),
            "job(id)": lambda: self.graphql("query($id: ID!) { job(id: $id) { id } }", {"id": job_id}),
            "jobs(first: 50)": lambda: self.graphql("{ jobs(first: 50) { edges { cursor } } }"),
            "/readyz": lambda: self.http.get("/readyz"),
        }
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            for name, call in calls.items():
                began = time.perf_counter()
                response = call()
                elapsed = round((time.perf_counter() - began) * 1000, 1)
                self.rows.append(
                    {"case": f"Redis frozen: {name}", "answer": answer(response), "wall_ms": elapsed}
                )
        finally:
            os.kill(redis_pid, signal.SIGCONT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads (the smoke test)")
    parser.add_argument("--output", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
    stack = Stack(workdir)
    keys = {
        hash_key(KEY): {"principal": "admin", "scopes": ["admin"]},
        hash_key(TENANT_KEY): {"principal": "tenant", "scopes": ["read", "submit"]},
    }
    stack.extra_env["GQL_JOBS_API_KEYS"] = json.dumps(keys)
    try:
        stack.start_redis()
        api = stack.start_api("ours", 1)
        stack.wait_ready(api)
        bench = Bench(stack, args.quick)
        for part in (
            bench.documents,
            bench.keys,
            bench.idle_polling,
            bench.fan_out,
            bench.readiness,
            bench.frozen,
        ):
            part()
            wait_until(
                "api",
                lambda: bench.http.get("/healthz").status_code == 200,
                api.proc.process,
                api.proc.log,
                120,
            )
    except Exception:
        stack.print_log_tails(3000)
        raise
    finally:
        stack.stop_all()
    for row in bench.rows:
        name = row.pop("case")
        print(f"{name:58} " + "  ".join(f"{k}={v}" for k, v in row.items()))
        row["case"] = name
    if args.output:
        args.output.write_text(json.dumps(bench.rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
