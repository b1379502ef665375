"""constraints/lowest.txt (the "lowest" leg of ./scripts/test) pins exactly pyproject.toml's lower bounds.

Otherwise the two drift apart: a bound raised in pyproject.toml but not in the constraints (or the other way)
means the lowest leg tests a set of versions that no user can get, and the bound is no longer a tested one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _floored() -> list[Requirement]:
    """The library's own requirements: its dependencies and the `dev-server` extra (what users install)."""
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    lines = [*project["dependencies"], *extras["dev-server"]]  # type: ignore[misc]
    return [Requirement(line) for line in lines]


def _lower_bound(specifier: SpecifierSet) -> Version:
    floors = [Version(spec.version) for spec in specifier if spec.operator == ">="]
    assert len(floors) == 1, f"{specifier}: one `>=` lower bound expected"
    return floors[0]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[requirement.name] = Version(spec.version)
    return pins


def test_every_dependency_has_a_lower_bound_and_lowest_txt_pins_exactly_it() -> None:
    pins = _pins()
    expected = {requirement.name: _lower_bound(requirement.specifier) for requirement in _floored()}
    assert pins == expected


def test_the_lowest_pins_are_allowed_by_the_upper_caps() -> None:
    pins = _pins()
    for requirement in _floored():
        assert requirement.specifier.contains(pins[requirement.name]), requirement


def test_capped_libraries_are_the_ones_whose_internals_we_subclass() -> None:
    """A cap is a promise that an adapter test guards the internals we use; no cap without one."""
    capped = {r.name for r in _floored() if any(spec.operator in {"<", "<="} for spec in r.specifier)}
    guarded = {
        "strawberry-graphql": ROOT / "tests" / "graphql" / "test_strawberry_adapter.py",
        "graphql-core": ROOT / "tests" / "graphql" / "test_strawberry_adapter.py",
        "redis": ROOT / "tests" / "store" / "test_redis_adapter.py",
        "rq": ROOT / "tests" / "store" / "test_rq_adapter.py",
        "uvicorn": ROOT / "tests" / "web" / "test_uvicorn_adapter.py",
    }
    assert capped == set(guarded)
    for path in guarded.values():
        assert path.is_file(), path
