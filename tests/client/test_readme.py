"""The README's "Python client and CLI" examples, run as written against a real server and worker:
each Python block as a script, each line of the shell block as a command."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import Server
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Python client and CLI\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.DOTALL)


def test_the_section_has_its_examples() -> None:
    assert len(blocks("python")) == 2 and len(blocks("bash")) == 1


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_example(index: int, server: Server, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(blocks("python")[index])
    done = subprocess.run(
        [sys.executable, str(script)],
        env=server.cli_env(),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def test_cli_examples(server: Server, tmp_path: Path) -> None:
    (tmp_path / "payload.json").write_text('{"from": "a file"}')
    for line in blocks("bash")[0].splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "gql-jobs", line
        done = subprocess.run(
            [sys.executable, "-m", "gql_jobs", *argv[1:]],
            env=server.cli_env(),
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{line}: {done.stderr.decode()[-2000:]}"
