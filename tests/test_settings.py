"""Settings: the lesson's names keep working, ours are prefixed, bad values fail in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gql_jobs.settings import Settings, SettingsError, load_settings, variable_names

# Every variable gql-jobs read before `env_prefix` replaced the per-field aliases (the README's
# configuration table), hard-coded so that a renamed field or a lost alias fails here.
VARIABLES = [
    "REDIS_URL",
    "GQL_JOBS_REDIS_URL",
    "RQ_QUEUE_NAME",
    "GQL_JOBS_QUEUE_NAME",
    "RQ_DEFAULT_TIMEOUT",
    "GQL_JOBS_DEFAULT_TIMEOUT",
    "GQL_JOBS_SENTINELS",
    "GQL_JOBS_SENTINEL_MASTER",
    "GQL_JOBS_SENTINEL_PASSWORD",
    "GQL_JOBS_SENTINEL_FAILOVER_WAIT",
    "GQL_JOBS_REDIS_USERNAME",
    "GQL_JOBS_REDIS_PASSWORD",
    "GQL_JOBS_REDIS_DB",
    "GQL_JOBS_REDIS_WAIT_REPLICAS",
    "GQL_JOBS_REDIS_WAIT_TIMEOUT_MS",
    "GQL_JOBS_QUEUES",
    "GQL_JOBS_MAX_QUEUES",
    "GQL_JOBS_RESULT_TTL",
    "GQL_JOBS_FAILURE_TTL",
    "GQL_JOBS_MAX_PAYLOAD_BYTES",
    "GQL_JOBS_MAX_PAYLOAD_DEPTH",
    "GQL_JOBS_MAX_BATCH_SIZE",
    "GQL_JOBS_MAX_TAGS",
    "GQL_JOBS_MAX_PAGE_SIZE",
    "GQL_JOBS_INDEX_RETENTION",
    "GQL_JOBS_TASKS",
    "GQL_JOBS_BUILTIN_TASKS",
    "GQL_JOBS_REDIS_SOCKET_TIMEOUT",
    "GQL_JOBS_REDIS_CONNECT_TIMEOUT",
    "GQL_JOBS_REDIS_MAX_CONNECTIONS",
    "GQL_JOBS_API_KEYS",
    "GQL_JOBS_IDEMPOTENCY_TTL",
    "GQL_JOBS_RATE_LIMIT",
    "GQL_JOBS_RATE_LIMIT_BURST",
    "GQL_JOBS_REQUEST_THREADS",
    "GQL_JOBS_MAX_CONCURRENT_READS_PER_PRINCIPAL",
    "GQL_JOBS_READ_SLOT_WAIT",
    "GQL_JOBS_WORKER_HEARTBEAT_INTERVAL",
    "GQL_JOBS_WORKER_HEARTBEAT_GRACE",
    "GQL_JOBS_WORKER_MAINTENANCE_INTERVAL",
    "GQL_JOBS_POLL_INTERVAL",
    "GQL_JOBS_POLL_MAX_JOBS",
    "GQL_JOBS_WS_MAX_SUBSCRIPTIONS",
    "GQL_JOBS_WS_MAX_CONNECTIONS_PER_PRINCIPAL",
    "GQL_JOBS_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
    "GQL_JOBS_HEADER_TIMEOUT",
    "GQL_JOBS_BODY_TIMEOUT",
    "GQL_JOBS_ALLOWED_ORIGINS",  # deprecated: GQL_JOBS_CORS_ORIGINS
    "GQL_JOBS_CORS_ORIGINS",
    "GQL_JOBS_CORS_LOCALHOST",
    "GQL_JOBS_LOG_FORMAT",
    "GQL_JOBS_LOG_LEVEL",
    "GQL_JOBS_METRICS_ACCESS",
    "GQL_JOBS_CONSOLE",
    "GQL_JOBS_GRAPHIQL",
    "GQL_JOBS_API_DOCS",
    "GQL_JOBS_INTROSPECTION",
    "GQL_JOBS_MAX_QUERY_DEPTH",
    "GQL_JOBS_MAX_QUERY_TOKENS",
    "GQL_JOBS_MAX_QUERY_ALIASES",
    "GQL_JOBS_MAX_DOCUMENT_BYTES",
    "GQL_JOBS_MAX_QUERY_COST",
    "GQL_JOBS_MAX_BATCH_OPERATIONS",
    "GQL_JOBS_DOCUMENT_CACHE_BYTES",
    "GQL_JOBS_DOCUMENT_CACHE_ENTRY_BYTES",
    "GQL_JOBS_PERSISTED_QUERIES",
    "GQL_JOBS_PERSISTED_QUERY_TTL",
    "GQL_JOBS_PERSISTED_DOCUMENTS",
    "GQL_JOBS_ONLY_PERSISTED_DOCUMENTS",
    "GQL_JOBS_MAX_BULK_JOBS",
]
FIELD_OF = {name: field for field in Settings.model_fields for name in variable_names(field)}
LESSON = [
    ("redis_url", "REDIS_URL", "GQL_JOBS_REDIS_URL", "redis://old:6379/1", "redis://new:6379/2"),
    ("queue_name", "RQ_QUEUE_NAME", "GQL_JOBS_QUEUE_NAME", "old", "new"),
    ("default_timeout", "RQ_DEFAULT_TIMEOUT", "GQL_JOBS_DEFAULT_TIMEOUT", "11", "22"),
]
# A valid value other than the default, for the fields whose type does not give one.
#: A manifest of trusted documents without any (valid, so `GQL_JOBS_PERSISTED_DOCUMENTS` may name it).
EMPTY_MANIFEST = str(Path(__file__).with_name("empty-manifest.json"))
OTHER_VALUE = {
    "redis_url": "redis://elsewhere:6379/1",
    "persisted_documents": EMPTY_MANIFEST,
    "sentinels": "h1:26379, h2:26379",
    "queues": "high,low",
    "tasks": "tests.fixtures",
    "cors_origins": "https://a.example",
    "api_keys": json.dumps({"0" * 64: {"principal": "billing", "scopes": ["read"]}}),
    "api_docs": "false",
    "log_format": "text",
    "log_level": "DEBUG",
    "metrics_access": "key",
    "sentinel_master": "other",
    "sentinel_password": "secret",
    "redis_username": "someone",
    "redis_password": "secret",
    "queue_name": "reports",
}


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


def _other_value(field: str, default: object) -> str:
    if field in OTHER_VALUE:
        return OTHER_VALUE[field]
    if isinstance(default, bool):
        return str(not default).lower()
    assert isinstance(default, int | float), field
    return str(default + 1)


def test_the_model_accepts_exactly_the_variables_of_before() -> None:
    derived = [name for field in Settings.model_fields for name in variable_names(field)]
    assert sorted(derived) == sorted(VARIABLES)


@pytest.mark.parametrize("source", ["environment", ".env"])
@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, source: str
) -> None:
    field = FIELD_OF[variable]
    default = getattr(load_settings(), field)
    value = _other_value(field, default)
    if field == "only_persisted_documents":  # needs a manifest
        monkeypatch.setenv("GQL_JOBS_PERSISTED_DOCUMENTS", EMPTY_MANIFEST)
    if source == ".env":
        (tmp_path / ".env").write_text(f"{variable}='{value}'\n")
    else:
        monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) != default


@pytest.mark.parametrize("variable", ["MAX_TAGS", "QUEUE_NAME", "DEFAULT_TIMEOUT", "LOG_LEVEL"])
def test_a_field_name_alone_is_not_a_variable(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Before `env_prefix`, `populate_by_name` made pydantic-settings read the bare field names too
    (`MAX_TAGS=5` set max_tags); a generic `LOG_LEVEL` of another program no longer configures us."""
    field = variable.lower()
    default = getattr(load_settings(), field)
    monkeypatch.setenv(variable, _other_value(field, default))
    assert getattr(load_settings(), field) == default


@pytest.mark.parametrize(("field", "lesson", "prefixed", "old", "new"), LESSON)
@pytest.mark.parametrize("which", ["lesson", "prefixed"])
def test_the_lesson_settings_take_either_name(
    monkeypatch: pytest.MonkeyPatch, field: str, lesson: str, prefixed: str, old: str, new: str, which: str
) -> None:
    monkeypatch.setenv(lesson if which == "lesson" else prefixed, new)
    assert str(getattr(load_settings(), field)) == new


@pytest.mark.parametrize(("field", "lesson", "prefixed", "old", "new"), LESSON)
def test_the_prefixed_name_wins_when_both_are_set(
    monkeypatch: pytest.MonkeyPatch, field: str, lesson: str, prefixed: str, old: str, new: str
) -> None:
    monkeypatch.setenv(lesson, old)
    monkeypatch.setenv(prefixed, new)
    assert str(getattr(load_settings(), field)) == new


def test_the_environment_wins_over_dot_env_whatever_the_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("GQL_JOBS_DEFAULT_TIMEOUT=22\n")
    monkeypatch.setenv("RQ_DEFAULT_TIMEOUT", "11")
    assert load_settings().default_timeout == 11


def test_overrides_win_over_the_environment_and_take_field_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQL_JOBS_DEFAULT_TIMEOUT", "22")
    settings = load_settings(default_timeout=33, redis_url="redis://x:1/0", queue_name="q", max_tags=5)
    assert (settings.default_timeout, settings.redis_url, settings.queue_name, settings.max_tags) == (
        33,
        "redis://x:1/0",
        "q",
        5,
    )


def test_model_validate_takes_field_names() -> None:
    settings = Settings.model_validate(
        {"redis_url": "redis://x:1/0", "queue_name": "q", "default_timeout": 5, "tasks": ["tests.fixtures"]}
    )
    assert (settings.redis_url, settings.queue_name, settings.default_timeout, settings.tasks) == (
        "redis://x:1/0",
        "q",
        5,
        ["tests.fixtures"],
    )


QUEUE_ERROR = "Value error, 'has space' is not a valid queue name ([A-Za-z0-9_.:-]{1,64})"
URL_ERROR = "Value error, must start with redis://, rediss:// or unix://"
NOT_INT = "Input should be a valid integer, unable to parse string as an integer"


# The exact lines the per-field-alias code printed for these values, but for the cases commented.
@pytest.mark.parametrize(
    ("environment", "dot_env", "overrides", "line"),
    [
        ({"RQ_DEFAULT_TIMEOUT": "soon"}, "", {}, f"RQ_DEFAULT_TIMEOUT: {NOT_INT}"),
        (
            {"GQL_JOBS_DEFAULT_TIMEOUT": "0"},
            "",
            {},
            "GQL_JOBS_DEFAULT_TIMEOUT: Input should be greater than 0",
        ),
        (
            {"RQ_DEFAULT_TIMEOUT": "5", "GQL_JOBS_DEFAULT_TIMEOUT": "0"},
            "",
            {},
            "GQL_JOBS_DEFAULT_TIMEOUT or RQ_DEFAULT_TIMEOUT: Input should be greater than 0",
        ),
        ({"REDIS_URL": "http://nope"}, "", {}, f"REDIS_URL: {URL_ERROR}"),
        ({"GQL_JOBS_REDIS_URL": "http://nope"}, "", {}, f"GQL_JOBS_REDIS_URL: {URL_ERROR}"),
        ({"RQ_QUEUE_NAME": "has space"}, "", {}, f"RQ_QUEUE_NAME: {QUEUE_ERROR}"),
        ({"GQL_JOBS_QUEUE_NAME": "has space"}, "", {}, f"GQL_JOBS_QUEUE_NAME: {QUEUE_ERROR}"),
        ({"GQL_JOBS_QUEUES": "high,has space"}, "", {}, f"GQL_JOBS_QUEUES: {QUEUE_ERROR}"),
        (
            {"GQL_JOBS_TASKS": "not a module"},
            "",
            {},
            "GQL_JOBS_TASKS: Value error, 'not a module' is not a dotted module path",
        ),
        ({"GQL_JOBS_MAX_TAGS": "1"}, "", {}, "GQL_JOBS_MAX_TAGS: Input should be greater than or equal to 2"),
        ({"gql_jobs_max_tags": "1"}, "", {}, "GQL_JOBS_MAX_TAGS: Input should be greater than or equal to 2"),
        (
            {"GQL_JOBS_LOG_LEVEL": "LOUD"},
            "",
            {},
            "GQL_JOBS_LOG_LEVEL: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (
            {"GQL_JOBS_CONSOLE": "maybe"},
            "",
            {},
            "GQL_JOBS_CONSOLE: Input should be a valid boolean, unable to interpret input",
        ),
        (
            {"GQL_JOBS_API_KEYS": json.dumps({"abc": {"principal": "p", "scopes": ["read"]}})},
            "",
            {},
            "GQL_JOBS_API_KEYS: Value error, keys must be SHA-256 hex digests of API keys "
            "(see `gql-jobs create-key`)",
        ),
        (
            {"GQL_JOBS_MAX_TAGS": "1", "RQ_DEFAULT_TIMEOUT": "soon"},
            "",
            {},
            f"RQ_DEFAULT_TIMEOUT: {NOT_INT}; GQL_JOBS_MAX_TAGS: Input should be greater than or equal to 2",
        ),
        ({}, "GQL_JOBS_MAX_PAGE_SIZE=0", {}, "GQL_JOBS_MAX_PAGE_SIZE: Input should be greater than 0"),
        # In `.env`, the per-field-alias code named both names of a lesson setting ("GQL_JOBS_DEFAULT_TIMEOUT
        # or RQ_DEFAULT_TIMEOUT"): it only looked in the environment. Now the one set is named.
        ({}, "RQ_DEFAULT_TIMEOUT=soon", {}, f"RQ_DEFAULT_TIMEOUT: {NOT_INT}"),
        ({}, "GQL_JOBS_QUEUE_NAME=has space", {}, f"GQL_JOBS_QUEUE_NAME: {QUEUE_ERROR}"),
        # Names are case-insensitive; the per-field-alias code did not recognise a lower-case one as set.
        ({"rq_default_timeout": "soon"}, "", {}, f"RQ_DEFAULT_TIMEOUT: {NOT_INT}"),
        # Not JSON: pydantic-settings raised its own exception, which the CLI printed as a traceback.
        (
            {"GQL_JOBS_API_KEYS": "{not json"},
            "",
            {},
            "GQL_JOBS_API_KEYS: Invalid JSON, Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            {},
            "GQL_JOBS_API_KEYS={not json",
            {},
            "GQL_JOBS_API_KEYS: Invalid JSON, Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (
            {},
            "",
            {"default_timeout": 0},
            "GQL_JOBS_DEFAULT_TIMEOUT or RQ_DEFAULT_TIMEOUT: Input should be greater than 0",
        ),
        (
            {},
            "",
            {"metrics_access": "public"},
            "GQL_JOBS_METRICS_ACCESS: Input should be 'auto', 'open' or 'key'",
        ),
    ],
)
def test_the_error_lines_are_those_of_before(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    environment: dict[str, str],
    dot_env: str,
    overrides: dict[str, object],
    line: str,
) -> None:
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    if dot_env:
        (tmp_path / ".env").write_text(dot_env + "\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(**overrides)
    assert str(raised.value) == f"invalid settings: {line}"
