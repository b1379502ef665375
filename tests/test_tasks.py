"""The task registry: only declared tasks from configured modules can be enqueued."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from gql_jobs import task
from gql_jobs.errors import InvalidPayloadError, TaskModuleError, UnknownTaskError
from gql_jobs.tasks import BUILTIN_MODULE, TaskRegistry, task_modules
from tests import fixtures


def test_builtins_and_configured_modules_are_registered() -> None:
    registry = TaskRegistry.from_modules(task_modules(["tests.fixtures"], builtins=True))
    assert {"heavy_compute", "echo", "sleep", "fail", "add"} <= set(registry.names())


def test_builtins_can_be_switched_off() -> None:
    registry = TaskRegistry.from_modules(task_modules(["tests.fixtures"], builtins=False))
    assert "heavy_compute" not in registry
    assert "add" in registry


def test_unknown_name_is_refused() -> None:
    registry = TaskRegistry.from_modules([BUILTIN_MODULE])
    with pytest.raises(UnknownTaskError) as raised:
        registry.get("os.system")
    assert raised.value.task == "os.system"


def test_a_module_that_cannot_be_imported_fails_at_start() -> None:
    with pytest.raises(TaskModuleError, match="cannot import 'no_such_module_here'"):
        TaskRegistry.from_modules(["no_such_module_here"])


def test_stored_function_path_is_the_importable_wrapper() -> None:
    spec = TaskRegistry.from_modules(["tests.fixtures"]).get("add")
    assert spec.func_path == "tests.fixtures.add"
    # What a worker imports by that path validates the payload and returns JSON-ready data.
    assert fixtures.add({"a": 2, "b": 3}) == {"total": 5}  # type: ignore[arg-type, comparison-overlap]


def test_payload_is_validated_against_the_input_model_with_field_paths() -> None:
    spec = TaskRegistry.from_modules(["tests.fixtures"]).get("add")
    with pytest.raises(InvalidPayloadError) as raised:
        spec.validate({"a": "x", "b": -1})
    paths = {error.path for error in raised.value.field_errors}
    assert paths == {("a",), ("b",)}


def test_payload_without_a_model_must_be_an_object() -> None:
    spec = TaskRegistry.from_modules([BUILTIN_MODULE]).get("echo")
    with pytest.raises(InvalidPayloadError):
        spec.validate([1, 2])
    assert spec.validate({"k": 1}) == {"k": 1}


def test_input_schema_comes_from_the_model() -> None:
    spec = TaskRegistry.from_modules(["tests.fixtures"]).get("add")
    assert set(spec.input_schema()["properties"]) == {"a", "b"}


def test_a_task_must_be_module_level() -> None:
    class Model(BaseModel):
        x: int

    with pytest.raises(ValueError, match="module-level"):

        @task("inner", input_model=Model)
        def inner(data: Model) -> None:
            return None


def test_task_names_are_restricted() -> None:
    with pytest.raises(ValueError, match="must match"):
        task("has space")(fixtures.add)


@task("documented")
def documented(payload: dict[str, object]) -> None:
    """Resize one image.

    More about it, which the schema's task list does not show."""


def test_a_task_without_description_takes_its_docstrings_first_line() -> None:
    """A new user's docstring is the description the schema and the console show, said once."""
    registry = TaskRegistry.from_modules([__name__, "tests.fixtures"])
    assert registry.get("documented").description == "Resize one image."
    assert registry.get("add").description == "Adds two numbers."  # an explicit one wins
    assert registry.get("unserializable").description is None  # neither
