"""Checks for the library internals we subclass (redis-py's, Strawberry's): shared by their adapter tests.

Each adapter test lists, per base class and method, the parameters our override or call was written
against; a release that renames, reorders or drops one fails that test by name. And every method our
subclasses define over one of the library's must be in that list, so a new override cannot go unchecked.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any


def parameter_names(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def missing_parameters(function: Any, expected: Iterable[str]) -> list[str]:
    """The `expected` names that `function` lacks or has out of their order (empty when it fits)."""
    names = parameter_names(function)
    missing, position = [], 0
    for name in expected:
        if name in names[position:]:
            position = names.index(name, position) + 1
        else:
            missing.append(name)
    return missing


def library_method(ours: type, name: str, library_root: str) -> Any:
    """The library's `name` that `ours` overrides (from its first base in `library_root` defining it).

    None when no such base defines it."""
    for base in ours.__mro__[1:]:
        if base.__module__.split(".")[0] == library_root and name in vars(base):
            return vars(base)[name]
    return None


def overrides(ours: type, library_root: str) -> set[str]:
    """The methods `ours` defines over one of a class from `library_root`.

    Not `__init__` (ours pass everything through) nor class attributes that are classes."""
    return {
        name
        for name, value in vars(ours).items()
        if (name == "__call__" or not name.startswith("__"))
        and not isinstance(value, type)
        and callable(getattr(value, "__func__", value))
        and library_method(ours, name, library_root) is not None
    }
