"""The uvicorn internals `web/server.py` subclasses (its HTTP protocols), held to the installed uvicorn.

`uvicorn` is capped at the minor the suite ran on (pyproject.toml): the header and body deadlines
override protocol methods and read protocol attributes that are not public API. A release that
renames or reshapes one fails here, by name, instead of leaving slow clients unbounded.
"""

from __future__ import annotations

from typing import Any

import pytest

from gql_jobs.web.server import GuardedH11Protocol, GuardedHttpToolsProtocol
from tests.adapter_checks import library_method, missing_parameters, overrides

#: Per class of ours, the uvicorn methods it overrides: the parameters (in order) it relies on.
OVERRIDDEN: dict[type[Any], dict[str, list[str]]] = {
    GuardedH11Protocol: {
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
        "data_received": ["self", "data"],
        "on_response_complete": ["self"],
        "handle_websocket_upgrade": ["self", "event"],
    },
    GuardedHttpToolsProtocol: {
        "connection_made": ["self", "transport"],
        "connection_lost": ["self", "exc"],
        "data_received": ["self", "data"],
        "on_response_complete": ["self"],
        "handle_websocket_upgrade": ["self"],
    },
}
#: Attributes `HeaderDeadline` and the protocols read, set by the protocol's `__init__` or `connection_made`.
ATTRIBUTES = ["app_state", "loop", "cycle", "transport"]


@pytest.mark.parametrize("ours", list(OVERRIDDEN), ids=lambda cls: cls.__name__)
def test_every_override_of_a_uvicorn_method_is_checked_here(ours: type[Any]) -> None:
    assert overrides(ours, "uvicorn") == set(OVERRIDDEN[ours])


@pytest.mark.parametrize(
    ("ours", "name"),
    [(ours, name) for ours, methods in OVERRIDDEN.items() for name in methods],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_overridden_method_has_the_parameters_we_were_written_against(ours: type[Any], name: str) -> None:
    method = library_method(ours, name, "uvicorn")
    assert method is not None, f"uvicorn no longer has {ours.__mro__[1].__name__}.{name}"
    missing = missing_parameters(method, OVERRIDDEN[ours][name])
    assert not missing, f"{name} lost or moved {missing}: update gql_jobs/web/server.py"


@pytest.mark.parametrize("ours", list(OVERRIDDEN), ids=lambda cls: cls.__name__)
def test_the_protocol_sets_the_attributes_we_read(ours: type[Any]) -> None:
    import inspect

    base: Any = ours.__mro__[1]
    source = inspect.getsource(vars(base)["__init__"]) + inspect.getsource(vars(base)["connection_made"])
    missing = [
        name for name in ATTRIBUTES if f"self.{name} =" not in source and f"self.{name}:" not in source
    ]
    assert not missing, f"uvicorn's {base.__name__} no longer sets {missing}"
