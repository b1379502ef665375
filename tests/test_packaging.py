"""The built wheel, as a user gets it: installed into a clean virtualenv, run from outside the checkout.

It catches what an editable install hides: a module or asset missing from the wheel, a dependency only
the checkout provides, fakeredis needed outside `gql-jobs[dev-server]`, a version that differs from
`gql_jobs.__version__`. The install takes its dependencies from the index (pip's cache makes it quick).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import gql_jobs
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: Files the IDE, the job console and /docs serve; without them those pages answer 404.
ASSETS = (
    "gql_jobs/py.typed",
    "gql_jobs/web/static/console/console.js",
    "gql_jobs/web/static/ide/ide.css",
    "gql_jobs/web/static/vendor/LICENSES.txt",
    "gql_jobs/client/_generated/client.py",  # the Python client's generated layer
    "gql_jobs/web/static/vendor-console/uPlot.iife.min.js",
    "gql_jobs/web/static/vendor-docs/swagger-ui-bundle.js",
    "gql_jobs/web/templates/docs.html",
)


def _run(argv: list[str | Path], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GQL_JOBS_", "REDIS_", "RQ_", "PYTHON"))}
    env.update(extra_env)
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build` makes (sdist first, then the wheel from the sdist, as PyPI users get)."""
    out = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=out)
    assert built.returncode == 0, built.stderr[-2000:]
    (found,) = out.glob("gql_jobs-*.whl")
    return found


def test_the_wheel_carries_its_assets_license_and_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"gql_jobs-{gql_jobs.__version__}.dist-info"
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert wheel.name == f"gql_jobs-{gql_jobs.__version__}-py3-none-any.whl"
    assert set(ASSETS) <= names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert not any(name.startswith("tests/") for name in names)
    assert "License-Expression: MIT" in metadata
    fakeredis = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: fakeredis")]
    assert fakeredis == ['Requires-Dist: fakeredis[lua]>=2.38; extra == "dev-server"']  # only there
    otel = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: opentelemetry")]
    assert otel and all(line.endswith('; extra == "otel"') for line in otel)  # tracing is optional


def test_the_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    installed = _run([bin_dir / "python", "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    version = _run([bin_dir / "gql-jobs", "--version"], cwd=elsewhere)
    assert version.stdout == f"gql-jobs {gql_jobs.__version__}\n"

    schema = _run([bin_dir / "gql-jobs", "export-schema"], cwd=elsewhere)
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")

    where = _run([bin_dir / "python", "-c", "import gql_jobs; print(gql_jobs.__file__)"], cwd=elsewhere)
    assert where.stdout.startswith(str(env_dir)), where.stdout  # the wheel's copy, not the checkout's

    # Without the dev-server extra, `dev` with no Redis says what to install, in one line.
    dev = _run([bin_dir / "gql-jobs", "dev"], cwd=elsewhere)
    assert dev.returncode == 2
    assert dev.stderr.strip().splitlines() == [
        "gql-jobs dev: REDIS_URL is not set and the in-memory Redis is not installed: "
        "pip install 'gql-jobs[dev-server]', or set REDIS_URL"
    ]

    # Without the otel extra, tracing asked for stops the worker at start, in one line naming both.
    worker = _run(
        [bin_dir / "gql-jobs", "worker"], cwd=elsewhere, OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4317"
    )
    assert worker.returncode == 2
    assert worker.stderr.strip().splitlines() == [
        "gql-jobs worker: OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
        "pip install 'gql-jobs[otel]'"
    ]

    # Without the client extra, a client command says what to install, in one line.
    jobs = _run([bin_dir / "gql-jobs", "jobs"], cwd=elsewhere)
    assert jobs.returncode == 1
    (line,) = jobs.stderr.strip().splitlines()
    assert line.startswith(
        "gql-jobs jobs: the client commands need the client extra (pip install 'gql-jobs[client]')"
    )


def test_the_docker_build_stage_copies_what_the_wheel_needs(tmp_path: Path) -> None:
    """The Dockerfile's build stage copies a few paths and runs `pip wheel .` on them: with only those
    (no Docker engine here), the wheel builds whole. Without LICENSE copied, setuptools only warned and
    the image's wheel went without it."""
    build_stage = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]  # the first stage
    for sources in re.findall(r"^COPY (.+) \S+$", build_stage, re.MULTILINE):
        for source in sources.split():
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, tmp_path / source)
    out = tmp_path / "wheels"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out, tmp_path], cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = out.iterdir()
    assert wheel.name == f"gql_jobs-{gql_jobs.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {*ASSETS, f"gql_jobs-{gql_jobs.__version__}.dist-info/licenses/LICENSE"} <= names
