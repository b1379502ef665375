"""One real server for the client's tests: `gql-jobs dev` (the API and a real RQ worker, on its
in-memory Redis) with an admin API key and two tenants' keys (alice, bob: submit and read), started
once for the folder. Tests keep apart by tags."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gql_jobs.auth import Scope, new_key
from gql_jobs.dev import free_port
from tests.conftest import in_memory_env, start_dev, subprocess_env, wait_for


@dataclass(frozen=True)
class Server:
    url: str
    key: str
    #: Tenant keys (principal -> key), without the admin scope.
    tenants: dict[str, str]

    def cli_env(self, **extra: str) -> dict[str, str]:
        """The environment a client command run against this server gets."""
        return subprocess_env(**{"GQL_JOBS_URL": self.url, "GQL_JOBS_API_KEY": self.key, **extra})


def _ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    return False


@pytest.fixture(scope="package")
def server() -> Iterator[Server]:
    key, entry = new_key("client-tests", [Scope.ADMIN])
    entries = json.loads(entry)
    tenants: dict[str, str] = {}
    for principal in ("alice", "bob"):
        tenants[principal], line = new_key(principal, [Scope.SUBMIT, Scope.READ])
        entries.update(json.loads(line))
    entry = json.dumps(entries)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        # A bulk limit of 3: five jobs take a bulk action two calls, which the client must follow.
        env = in_memory_env(GQL_JOBS_API_KEYS=entry, GQL_JOBS_MAX_BULK_JOBS="3")
        process = start_dev(port, env=env, output=log)
        try:
            wait_for(lambda: _ready(url) or process.poll() is not None, timeout=60)
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"gql-jobs dev exited: {log.read().decode(errors='replace')[-2000:]}")
            yield Server(url, key, tenants)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def tag() -> str:
    """A label of this test's own: listing by it sees only the jobs this test submitted."""
    return f"t-{uuid.uuid4().hex[:12]}"
