"""The task registry: which functions may be enqueued, under which names, with which input.

Users declare tasks in their own modules:

    @gql_jobs.task("resize_image", input_model=ResizeInput, description="Resize one image")
    def resize_image(data: ResizeInput) -> dict[str, int]: ...

The decorator only *declares*; a registry is built from the modules named in `GQL_JOBS_TASKS`
(plus the built-ins unless switched off). Enqueueing uses the declared function's dotted path,
so a plain `rq worker -S json` that can import the module runs the same code; nothing is ever
imported or looked up from user input, only matched against the registry's names.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gql_jobs.constants import NAME_PATTERN
from gql_jobs.errors import FieldError, InvalidPayloadError, TaskModuleError, UnknownTaskError

BUILTIN_MODULE = "gql_jobs.builtin_tasks"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TaskSpec:
    """A declared task: `func_path` is what RQ stores and what workers import."""

    name: str
    func_path: str
    module: str
    description: str | None
    input_model: type[BaseModel] | None

    def validate(self, payload: Any) -> Any:
        """Check a payload before enqueue; returns the JSON-ready payload that will be stored."""
        if self.input_model is None:
            if not isinstance(payload, dict):
                raise InvalidPayloadError([FieldError((), "payload must be a JSON object", "dict_type")])
            return payload
        try:
            model = self.input_model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidPayloadError(_field_errors(exc)) from None
        return model.model_dump(mode="json")

    def input_schema(self) -> dict[str, Any]:
        if self.input_model is None:
            return {"type": "object", "additionalProperties": True}
        return self.input_model.model_json_schema()


#: Every task declared so far, by module, in declaration order. Filled at import time by `@task`.
_DECLARED: dict[str, dict[str, TaskSpec]] = {}


def task(
    name: str | None = None, *, input_model: type[BaseModel] | None = None, description: str | None = None
) -> Callable[[F], F]:
    """Declare a function as an enqueueable task.

    The function receives the payload: a validated `input_model` instance when one is given, the
    payload dict otherwise. A pydantic model it returns is stored as JSON.
    """

    def decorate(func: F) -> F:
        task_name = name or func.__name__
        if not re.fullmatch(NAME_PATTERN, task_name):
            raise ValueError(f"task name {task_name!r} must match {NAME_PATTERN}")
        if "<locals>" in func.__qualname__:
            raise ValueError(f"task {task_name!r} must be a module-level function so workers can import it")

        @functools.wraps(func)
        def run(payload: Any = None) -> Any:
            argument = payload if payload is not None else {}
            if input_model is not None:
                argument = input_model.model_validate(argument)
            result = func(argument)
            if isinstance(result, BaseModel):
                return result.model_dump(mode="json")
            return result

        spec = TaskSpec(
            name=task_name,
            func_path=f"{func.__module__}.{func.__qualname__}",
            module=func.__module__,
            description=description if description is not None else _first_line(func.__doc__),
            input_model=input_model,
        )
        _DECLARED.setdefault(func.__module__, {})[task_name] = spec
        return run  # type: ignore[return-value]

    return decorate


class TaskRegistry:
    """The tasks one process may enqueue, by name."""

    def __init__(self, specs: Iterable[TaskSpec]) -> None:
        self._specs: dict[str, TaskSpec] = {}
        for spec in specs:
            other = self._specs.get(spec.name)
            if other is not None and other.func_path != spec.func_path:
                raise ValueError(
                    f"task name {spec.name!r} is declared twice: {other.func_path}, {spec.func_path}"
                )
            self._specs[spec.name] = spec

    @classmethod
    def from_modules(cls, modules: Iterable[str]) -> TaskRegistry:
        """Import each module (names come from settings, never from requests) and take its tasks."""
        specs: list[TaskSpec] = []
        for module in dict.fromkeys(modules):
            _import_task_module(module)
            specs.extend(_DECLARED.get(module, {}).values())
        return cls(specs)

    def get(self, name: str) -> TaskSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise UnknownTaskError(name)
        return spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[TaskSpec]:
        return [self._specs[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def name_for(self, func_path: str | None) -> str | None:
        """The registered name of a stored function path (for jobs enqueued by other RQ clients)."""
        for spec in self._specs.values():
            if spec.func_path == func_path:
                return spec.name
        return None


def declared_name(name: str | None, func_path: str | None) -> str | None:
    """The task a stored job runs, if it is declared in a module this process imported (by its
    name, else by its function path); `None` for anything else.

    For labels taken from stored jobs (which any RQ client may write): bounded by the code, never
    by what a job says."""
    for declared in _DECLARED.values():
        if name is not None and name in declared:
            return name
    for declared in _DECLARED.values():
        for spec in declared.values():
            if spec.func_path == func_path:
                return spec.name
    return None


def _import_task_module(module: str) -> None:
    """Import a task module; failing that, one line naming it and where it must be importable."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise TaskModuleError(
            f"GQL_JOBS_TASKS: cannot import {module!r} ({exc}); task modules must be importable by "
            "both the API and the worker (installed, or on PYTHONPATH)"
        ) from exc


def task_modules(configured: Iterable[str], builtins: bool) -> list[str]:
    return ([BUILTIN_MODULE] if builtins else []) + list(configured)


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(path=tuple(error["loc"]), message=error["msg"], type=error["type"])
        for error in exc.errors(include_url=False)
    ]


def _first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    return doc.strip().splitlines()[0].strip() or None
