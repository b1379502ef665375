"""Settings: the lesson's names keep working, ours are prefixed, bad values fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gql_jobs.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("GQL_JOBS_", "RQ_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_lesson_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    monkeypatch.setenv("RQ_QUEUE_NAME", "reports")
    monkeypatch.setenv("RQ_DEFAULT_TIMEOUT", "120")
    settings = load_settings()
    assert (settings.redis_url, settings.queue_name, settings.default_timeout) == (
        "redis://example:6379/2",
        "reports",
        120,
    )


def test_prefixed_names_win_over_the_lesson_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RQ_QUEUE_NAME", "old")
    monkeypatch.setenv("GQL_JOBS_QUEUE_NAME", "new")
    assert load_settings().queue_name == "new"


def test_defaults_match_the_lesson() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    assert (settings.queue_name, settings.default_timeout) == ("default", 900)
    assert (settings.result_ttl, settings.failure_ttl) == (3600, 86400)


def test_task_modules_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQL_JOBS_TASKS", "myapp.tasks, other.jobs ,")
    assert load_settings().tasks == ["myapp.tasks", "other.jobs"]


def test_queues_are_comma_separated_and_the_default_queue_is_always_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GQL_JOBS_QUEUES", "high, low,high")
    settings = load_settings()
    assert settings.queues == ["high", "low"]
    assert settings.allowed_queues == {"default", "high", "low"}


def test_the_default_settings_bound_tags_and_queues() -> None:
    settings = load_settings()
    assert (settings.max_tags, settings.max_queues, settings.queues) == (10, 50, [])


def test_dot_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RQ_DEFAULT_TIMEOUT=77\nGQL_JOBS_MAX_PAGE_SIZE=9\n")
    settings = load_settings()
    assert (settings.default_timeout, settings.max_page_size) == (77, 9)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RQ_DEFAULT_TIMEOUT", "soon"),
        ("RQ_DEFAULT_TIMEOUT", "0"),
        ("GQL_JOBS_MAX_PAYLOAD_BYTES", "-1"),
        ("REDIS_URL", "http://nope"),
        ("GQL_JOBS_TASKS", "not a module"),
        ("RQ_QUEUE_NAME", "has space"),
        ("GQL_JOBS_QUEUES", "high,has space"),
        ("GQL_JOBS_MAX_QUEUES", "0"),
        ("GQL_JOBS_MAX_TAGS", "1"),
    ],
)
def test_invalid_value_fails_in_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert variable in message
