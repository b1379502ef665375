"""The load generator: closed-loop HTTP clients in a process of their own, bounded in time and count.

Two implementations with the same input (`LoadSpec`) and output (`LoadResult`):

* `wrk` (C, one thread, a generated Lua script): preferred, it costs the machine little CPU, which
  matters when the API, Redis and the client share two cores;
* an asyncio + httpx client run as `python -m bench.loadgen SPEC.json` (a subprocess): the
  fallback where wrk is not installed. It needs several times more CPU per request
  than wrk, so only ratios measured with the same client are comparable (the report names it).

Each of `concurrency` connections sends its next request as soon as the previous answer arrived,
for `duration` seconds or until `max_requests` answers, whichever comes first (or until `stop()`:
SIGINT, after which both still report). A request counts as
`ok` when its status is 2xx and, for GraphQL (`check="graphql"`), its body has no `"errors"` key
and no error member (`__typename` ending in `Error`). Latency percentiles are over ok answers
(wrk: over all answers). Paths and bodies are used in turn (reads by id cycle through job ids).
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bench.report import percentile

Check = Literal["http", "graphql"]
Client = Literal["wrk", "httpx"]

#: Seconds on top of the duration before a client process is killed.
GRACE = 30.0
MARKER = "LOADGEN-RESULT "
#: What the httpx load generator prints once it handles SIGINT (the parent waits for it).
READY = "LOADGEN-READY"


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    paths: tuple[str, ...]
    method: str = "GET"
    bodies: tuple[str, ...] = ()  # JSON bodies, used in turn (none: no body)
    concurrency: int = 16
    duration: float = 5.0
    max_requests: int = 1_000_000
    check: Check = "http"


@dataclass(frozen=True)
class LoadResult:
    client: str
    requests: int  # answers received
    ok: int
    failed: int
    duration_s: float
    rps: float  # ok answers per second
    p50_ms: float | None
    p99_ms: float | None
    first_error: str | None
    client_cpu_s: float
    capped: bool  # stopped by max_requests rather than by time

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def available_client(preference: str) -> Client:
    """`auto`: wrk when installed, else httpx."""
    if preference == "wrk":
        if shutil.which("wrk") is None:
            raise SystemExit("--loadgen wrk: no `wrk` on PATH (apt-get install wrk)")
        return "wrk"
    if preference == "httpx":
        return "httpx"
    return "wrk" if shutil.which("wrk") else "httpx"


class RunningLoad:
    """A load generator process under way: `stop()` ends it early (SIGINT; it still reports)."""

    def __init__(self, spec: LoadSpec, client: Client) -> None:
        self.spec = spec
        self.client = client
        self._before = resource.getrusage(resource.RUSAGE_CHILDREN)
        suffix = ".lua" if client == "wrk" else ".json"
        with tempfile.NamedTemporaryFile("w", suffix=suffix, prefix="bench-load-", delete=False) as script:
            script.write(wrk_script(spec) if client == "wrk" else json.dumps(asdict(spec)))
        self._script = Path(script.name)
        if client == "wrk":
            argv = ["wrk", "-t1", f"-c{spec.concurrency}", f"-d{max(1, math.ceil(spec.duration))}s"]
            argv += ["--timeout", "10s", "-s", str(self._script), spec.base_url]
        else:
            argv = [sys.executable, "-m", "bench.loadgen", str(self._script)]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if client == "httpx":
            # Wait until the child can take SIGINT: before its handler is installed, SIGINT kills
            # it (on a busy machine its imports alone can outlast a short run).
            assert self.process.stdout is not None
            ready = self.process.stdout.readline()
            if not ready.startswith(READY):
                self.process.wait()
                raise RuntimeError(f"the httpx load generator did not start: {ready!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def result(self) -> LoadResult:
        try:
            stdout, stderr = self.process.communicate(timeout=self.spec.duration + GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise RuntimeError(f"the load generator ({self.client}) did not finish in time") from None
        finally:
            self._script.unlink(missing_ok=True)
        line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
        if self.process.returncode != 0 or line is None:
            raise RuntimeError(
                f"{self.client} failed ({self.process.returncode}): {stdout[-500:]} {stderr[-1000:]}"
            )
        raw = json.loads(line[len(MARKER) :])
        result = _from_wrk(raw, self.spec) if self.client == "wrk" else LoadResult(**raw)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - self._before.ru_utime) + (after.ru_stime - self._before.ru_stime)
        return LoadResult(**{**result.as_json(), "client_cpu_s": round(cpu, 3)})


def run_load(spec: LoadSpec, client: Client) -> LoadResult:
    return RunningLoad(spec, client).result()


# -- wrk ------------------------------------------------------------------------------------------


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for our ASCII text


WRK_TEMPLATE = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local function now()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local paths = {
@PATHS@
}
local bodies = {
@BODIES@
}
local method = @METHOD@
local check_graphql = @GRAPHQL@
local max_requests = @MAX@
local threads = {}

answers = 0
bad = 0
first_error = nil
started = 0
stopped = 0
local turn = 0

local function json_string(text)
  local escaped = string.gsub(text, "[%c\"\\\128-\255]", function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  started = now()
end

function request()
  turn = turn + 1
  local headers = {}
  local body = nil
  if #bodies > 0 then
    body = bodies[(turn - 1) % #bodies + 1]
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, paths[(turn - 1) % #paths + 1], headers, body)
end

function response(status, headers, resp_body)
  answers = answers + 1
  local failed = status < 200 or status > 299
  if not failed and check_graphql and resp_body ~= nil then
    failed = string.find(resp_body, '"errors"', 1, true) ~= nil
      or string.find(resp_body, 'Error"', 1, true) ~= nil
  end
  if failed then
    bad = bad + 1
    if first_error == nil then
      first_error = tostring(status) .. " " .. string.sub(resp_body or "", 1, 200)
    end
  end
  if answers >= max_requests and stopped == 0 then
    stopped = now()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local elapsed = summary.duration / 1e6
  local capped = false
  if t:get("stopped") ~= 0 then
    elapsed = t:get("stopped") - t:get("started")
    capped = true
  end
  local fe = t:get("first_error")
  io.write("@MARKER@")
  io.write(string.format(
    '{"answers": %d, "bad": %d, "socket_errors": %d, "elapsed": %.6f, "p50_us": %.1f, '
    .. '"p99_us": %.1f, "capped": %s, "first_error": %s}\n',
    t:get("answers"), t:get("bad"), socket_errors, elapsed, latency:percentile(50),
    latency:percentile(99), tostring(capped), fe and json_string(fe) or "null"))
end
"""


def wrk_script(spec: LoadSpec) -> str:
    """The Lua script driving one wrk thread (counters are read back from that thread in `done`)."""
    return (
        WRK_TEMPLATE.replace("@PATHS@", ",\n".join(_lua_string(p) for p in spec.paths))
        .replace("@BODIES@", ",\n".join(_lua_string(b) for b in spec.bodies))
        .replace("@METHOD@", _lua_string(spec.method))
        .replace("@GRAPHQL@", "true" if spec.check == "graphql" else "false")
        .replace("@MAX@", str(spec.max_requests))
        .replace("@MARKER@", MARKER)
    )


def _from_wrk(raw: dict[str, Any], spec: LoadSpec) -> LoadResult:
    ok = int(raw["answers"]) - int(raw["bad"])
    elapsed = float(raw["elapsed"]) or spec.duration
    return LoadResult(
        client="wrk",
        requests=int(raw["answers"]),
        ok=ok,
        failed=int(raw["bad"]) + int(raw["socket_errors"]),
        duration_s=round(elapsed, 3),
        rps=round(ok / elapsed, 1),
        p50_ms=round(raw["p50_us"] / 1000, 3) if raw["answers"] else None,
        p99_ms=round(raw["p99_us"] / 1000, 3) if raw["answers"] else None,
        first_error=raw["first_error"],
        client_cpu_s=0.0,
        capped=bool(raw["capped"]),
    )


# -- httpx (the fallback) -------------------------------------------------------------------------


def failed_answer(status: int, text: str, check: Check) -> bool:
    if not 200 <= status <= 299:
        return True
    return check == "graphql" and ('"errors"' in text or 'Error"' in text)


async def _drive(spec: LoadSpec) -> LoadResult:
    import httpx  # noqa: PLC0415 (only the child process needs it)

    latencies: list[float] = []
    counts = {"answers": 0, "bad": 0, "turn": 0}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency)
    headers = {"Content-Type": "application/json"} if spec.bodies else {}
    contents = [body.encode() for body in spec.bodies]
    began = time.monotonic()
    deadline = {"end": began + spec.duration}
    last = began

    def stop() -> None:  # SIGINT: finish the requests under way, then report
        deadline["end"] = min(deadline["end"], time.monotonic())

    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop)
    print(READY, flush=True)  # the parent may send SIGINT from now on (see RunningLoad)

    async with httpx.AsyncClient(base_url=spec.base_url, timeout=10.0, limits=limits) as http:

        async def connection() -> None:
            nonlocal last
            while time.monotonic() < deadline["end"] and counts["answers"] < spec.max_requests:
                turn = counts["turn"]
                counts["turn"] += 1
                path = spec.paths[turn % len(spec.paths)]
                content = contents[turn % len(contents)] if contents else None
                sent = time.monotonic()
                try:
                    response = await http.request(spec.method, path, content=content, headers=headers)
                    failed = failed_answer(response.status_code, response.text, spec.check)
                    error = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    failed, error = True, f"{type(exc).__name__}: {exc}"
                last = time.monotonic()
                counts["answers"] += 1
                if failed:
                    counts["bad"] += 1
                    errors.append(error)
                else:
                    latencies.append(last - sent)

        await asyncio.gather(*(connection() for _ in range(spec.concurrency)))
    capped = counts["answers"] >= spec.max_requests
    elapsed = (last if capped else max(last, deadline["end"])) - began
    ok = counts["answers"] - counts["bad"]
    return LoadResult(
        client="httpx",
        requests=counts["answers"],
        ok=ok,
        failed=counts["bad"],
        duration_s=round(elapsed, 3),
        rps=round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(latencies, 0.5) * 1000, 3) if latencies else None,
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3) if latencies else None,
        first_error=errors[0] if errors else None,
        client_cpu_s=0.0,
        capped=capped,
    )


def main() -> int:
    raw = json.loads(Path(sys.argv[1]).read_text())
    raw["paths"] = tuple(raw["paths"])
    raw["bodies"] = tuple(raw["bodies"])
    spec = LoadSpec(**raw)
    result = asyncio.run(_drive(spec))
    print(MARKER + json.dumps(result.as_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
