"""Node and the npm packages of clients/ (pinned by its package-lock.json), for the tests that run
real JavaScript clients: in Node (tests/integration/test_clients.py) and bundled for a browser page
(tests/integration/test_browser.py).

Without Node those tests skip and say why (`.ci/run` installs it). With Node, a missing or stale
clients/node_modules is installed once with `npm ci`, and a failure of that fails the test: CI runs
these tests, never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLIENTS = ROOT / "clients"
#: Seconds `npm ci` and esbuild may take at most.
INSTALL_TIMEOUT = 600


def installed_clients() -> str:
    """The `node` executable, with every package of clients/package.json installed."""
    executable = shutil.which("node")
    if executable is None:
        pytest.skip("node is not installed: the client tests need Node 18+ (.ci/run installs it)")
    if missing_packages():
        npm = shutil.which("npm")
        assert npm is not None, "node is installed but npm is not: cannot install clients/ (npm ci)"
        installed = _run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS)
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
        assert missing_packages() == [], "npm ci left packages out"
    return executable


def missing_packages() -> list[str]:
    """Packages that clients/package.json names and clients/node_modules lacks (an old checkout's
    node_modules may predate a package added since)."""
    manifest = json.loads((CLIENTS / "package.json").read_text())
    names = [*manifest.get("dependencies", {}), *manifest.get("devDependencies", {})]
    return [n for n in names if not (CLIENTS / "node_modules" / n / "package.json").is_file()]


def bundle(entry: Path, outfile: Path) -> None:
    """One browser file of `entry` and the client packages it imports, made by clients/' esbuild
    (no CDN: the page loads nothing but its own origin's files)."""
    installed_clients()
    built = _run(
        [
            str(CLIENTS / "node_modules" / ".bin" / "esbuild"),
            str(entry),
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
            f"--outfile={outfile}",
        ],
        cwd=ROOT,
        env={**os.environ, "NODE_PATH": str(CLIENTS / "node_modules")},  # entry lives outside clients/
    )
    assert built.returncode == 0, f"esbuild failed:\n{built.stdout}\n{built.stderr}"


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
