"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gql_jobs.cli import _parser
from gql_jobs.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_redis_api_and_worker(compose: dict[str, Any]) -> None:
    assert {"redis", "api", "worker"} <= set(compose["services"])


def test_redis_persists_with_aof_and_is_health_checked(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "healthcheck" in redis


@pytest.mark.parametrize("service", ["api", "worker"])
def test_service_commands_are_real_cli_commands(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    assert command[0] == "gql-jobs"
    _parser().parse_args(command[1:])  # exits (fails the test) on an unknown command or option
    assert compose["services"][service]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_stop_grace_outlasts_the_default_job_timeout(compose: dict[str, Any]) -> None:
    grace = compose["services"]["worker"]["stop_grace_period"]
    assert int(re.fullmatch(r"(\d+)s", grace).group(1)) > 900  # type: ignore[union-attr]


def test_dockerfile_runs_as_non_root_with_the_documented_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.rstrip().count("USER app") == 2  # both images run unprivileged
    assert "HEALTHCHECK" in dockerfile
    commands = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert commands
    argv = yaml.safe_load(commands[-1])  # the runtime stage's
    _parser().parse_args(argv[1:])
    assert " ".join(argv[:2]) in (ROOT / "README.md").read_text()


def test_dashboard_profile_reads_json_jobs_from_the_same_redis(compose: dict[str, Any]) -> None:
    dashboard = compose["services"]["dashboard"]
    assert dashboard["profiles"] == ["dashboard"]
    assert dashboard["environment"]["RQ_DASHBOARD_REDIS_URL"] == "redis://redis:6379/0"
    assert dashboard["build"]["target"] == "dashboard"
    assert "command" not in dashboard  # the image's, which insists on basic auth (test_dashboard.py runs it)
    stage = (ROOT / "Dockerfile").read_text().split(" AS dashboard", 1)[1].split("\nFROM ", 1)[0]
    assert "--json" in stage and "constraints/dashboard.txt" in stage


def test_dashboard_is_published_on_the_hosts_loopback_only(compose: dict[str, Any]) -> None:
    """It bypasses API keys and tenants: never on every interface of the host."""
    assert compose["services"]["dashboard"]["ports"] == ["127.0.0.1:9181:9181"]


@pytest.mark.parametrize("service", ["api", "worker"])
def test_services_restart_by_themselves(compose: dict[str, Any], service: str) -> None:
    assert compose["services"][service]["restart"] == "unless-stopped"


def test_the_runtime_image_is_the_default_target() -> None:
    stages = re.findall(r"^FROM \S+ AS (\w+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert stages[-1] == "runtime"


def test_env_example_is_safe_to_copy_into_production() -> None:
    """The README says to copy `.env.example` to `.env`, and compose hands `.env` to `serve`: nothing
    it sets may turn on what `serve` keeps off (a copied `GQL_JOBS_GRAPHIQL=true` made the IDE public)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    for name in ("GQL_JOBS_GRAPHIQL", "GQL_JOBS_INTROSPECTION", "GQL_JOBS_API_DOCS"):
        assert values.get(name, "false").lower() == "false", name
        assert f"# {name}=true" in lines  # still shown, commented out, for who wants it


def test_env_example_is_valid_settings() -> None:
    Settings(_env_file=ROOT / ".env.example")


def test_env_example_copied_to_env_leaves_gql_jobs_dev_on_its_in_memory_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README says to copy `.env.example` to `.env`; `gql-jobs dev` serves an in-memory Redis only
    while no Redis is configured, so the copy must configure none (it once set REDIS_URL to localhost)."""
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    for name in ("REDIS_URL", "GQL_JOBS_REDIS_URL", "GQL_JOBS_SENTINELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()  # reads ./.env, as `gql-jobs dev` does
    assert not settings.redis_url and not settings.sentinels
    assert "# REDIS_URL=redis://localhost:6379/0" in (ROOT / ".env.example").read_text().splitlines()
