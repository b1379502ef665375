"""The API's start-up freezes what it built out of the cyclic GC's walks, once per process."""

from __future__ import annotations

import gc
import subprocess
import sys

from fastapi.testclient import TestClient

from gql_jobs import heap

PROBE = """
import gc
from gql_jobs import heap
assert gc.get_freeze_count() == 0
assert heap.freeze_startup_objects() is True
frozen = gc.get_freeze_count()
assert frozen > 1000, frozen  # the modules imported so far, at least
assert heap.freeze_startup_objects() is False  # once per process
assert gc.get_freeze_count() == frozen
print("ok")
"""


def test_freezes_once_per_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_apps_start_up_has_frozen_the_heap(client: TestClient) -> None:
    """`client` has run the app's lifespan: this process froze its heap (at the first app's start)."""
    assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() > 0
    assert heap.freeze_startup_objects() is False
