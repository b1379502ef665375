"""The Strawberry (and graphql-core) internals we subclass or call, held to the installed versions.

`strawberry-graphql` is capped at the minor the suite ran on (pyproject.toml) because these are not
public API: a release that renames or reshapes one fails here, by name, instead of failing requests
(or WebSocket handshakes) at run time. To raise the cap: install the new release, run this file, and
adapt `gql_jobs/graphql/schema.py`, `router.py` or `documents.py` to whatever it names.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
import strawberry.execution
from graphql import parse
from graphql.execution import experimental_execute_incrementally
from graphql.execution.collect_fields import CollectedFields
from graphql.execution.executor import Executor
from graphql.language import Location
from strawberry.schema.schema import Schema
from strawberry.types import ExecutionContext

from gql_jobs.graphql.executor import PlainLeavesExecutor
from gql_jobs.graphql.router import JobsGraphQL, LegacyWSHandler, PreferredSSETransport, TransportWSHandler
from gql_jobs.graphql.schema import CodedExecutor, CodedMaskErrors, GuardedSchema
from tests.adapter_checks import library_method, missing_parameters, overrides

#: Per class of ours, the Strawberry methods it overrides: their parameters (in order) in the release
#: we were written against (0.341.2; graphql-core 3.3 for `build`).
OVERRIDDEN: dict[type[Any], dict[str, list[str]]] = {
    GuardedSchema: {
        "execute": [
            "self",
            "query",
            "variable_values",
            "context_value",
            "root_value",
            "operation_name",
            "allowed_operation_types",
            "operation_extensions",
        ],
        "_create_execution_context": [
            "self",
            "query",
            "allowed_operation_types",
            "variable_values",
            "context_value",
            "root_value",
            "operation_name",
            "operation_extensions",
        ],
        "_prepare_operation_async": ["self", "context", "extensions_runner"],
        "_prepare_operation_sync": ["self", "context", "extensions_runner"],
    },
    CodedExecutor: {"build": ["schema", "document", "hide_suggestions"]},  # graphql-core's, via Strawberry
    CodedMaskErrors: {"anonymise_error": ["self", "error"]},
    JobsGraphQL: {
        "__call__": ["self", "scope", "receive", "send"],
        "_validate_batch_request": ["self", "request_data", "protocol"],
        "create_response": ["self", "response_data", "sub_response"],
        "decode_json": ["self", "data"],
        "encode_json": ["self", "data"],
        "execute_operation": [
            "self",
            "request",
            "request_adapter",
            "request_data",
            "context",
            "root_value",
            "sub_response",
        ],
        "execute_single": [
            "self",
            "request",
            "request_adapter",
            "sub_response",
            "context",
            "root_value",
            "request_data",
        ],
        "get_context": ["self", "request", "response"],
        "get_sub_response": ["self", "request"],
        "is_websocket_origin_allowed": ["self", "request", "origin"],
        "on_ws_connect": ["self", "context"],
        "parse_http_body": ["self", "request"],
        "parse_json": ["self", "data"],
        "process_result": ["self", "request", "result"],
        "render_graphql_ide": ["self", "request"],
        "should_render_graphql_ide": ["self", "request"],
    },
    TransportWSHandler: {"handle_connection_init": ["self", "message"], "handle": ["self"]},
    LegacyWSHandler: {"handle_connection_init": ["self", "message"], "handle": ["self"]},
    PreferredSSETransport: {"accepts": ["self", "accept"]},
    # graphql-core's (3.3), through Strawberry's execution context.
    PlainLeavesExecutor: {
        "execute_fields": [
            "self",
            "parent_type",
            "source_value",
            "path",
            "grouped_field_set",
            "position_context",
        ]
    },
}
#: Strawberry members we call or set that are not overridden: (owner, name).
USED: list[tuple[type[Any], str]] = [
    (Schema, "_process_errors"),
    (JobsGraphQL, "decode_json"),
    (JobsGraphQL, "run"),
    (LegacyWSHandler, "send_message"),
    (JobsGraphQL, "graphql_transport_ws_handler_class"),
    (JobsGraphQL, "graphql_ws_handler_class"),
    (JobsGraphQL, "stream_transport_classes_by_protocol"),
]
#: `ExecutionContext` fields `GuardedSchema._create_execution_context` reads and sets, and
#: those `direct.DirectExecution` makes one with (to log errors as Strawberry does).
CONTEXT_FIELDS = [
    "query",
    "graphql_document",
    "pre_execution_errors",
    "context",
    "schema",
    "allowed_operations",
    "root_value",
    "variables",
    "provided_operation_name",
    "operation_extensions",
]
#: What `direct.DirectExecution` calls in place of `Schema.execute`, with the parameters it passes.
CALLED: list[tuple[Any, list[str]]] = [
    (Schema._process_errors, ["self", "errors", "execution_context"]),
    (JobsGraphQL.run, ["self", "request", "context"]),
    (
        experimental_execute_incrementally,
        [
            "schema",
            "document",
            "root_value",
            "context_value",
            "variable_values",
            "operation_name",
            "executor_class",
            "is_awaitable",
            "custom_context_args",  # `operation_extensions`, for Strawberry's execution context
        ],
    ),
]


#: graphql-core's private methods `executor.PlainLeavesExecutor` calls, with the parameters it
#: passes (its short paths hand anything unusual back to them).
EXECUTOR_CALLS: list[tuple[Any, list[str]]] = [
    (
        Executor.execute_field,
        ["self", "parent_type", "source", "field_details_list", "path", "position_context"],
    ),
    (Executor.collect_subfields, ["self", "return_type", "field_details_list"]),
    (
        Executor.collect_and_execute_subfields,
        ["self", "return_type", "field_details_list", "path", "result", "position_context"],
    ),
    (Executor.handle_field_error, ["self", "raw_error", "return_type", "field_details_list", "path"]),
    (Executor.settle_in_background, ["self", "awaitables"]),
]


@pytest.mark.parametrize(
    ("function", "parameters"), EXECUTOR_CALLS, ids=lambda value: getattr(value, "__name__", "")
)
def test_what_the_executor_calls_takes_what_it_passes(function: Any, parameters: list[str]) -> None:
    missing = missing_parameters(function, parameters)
    assert not missing, (
        f"{function.__qualname__} lost or moved {missing}: update gql_jobs/graphql/executor.py"
    )


def test_collected_subfields_are_what_the_executor_unpacks() -> None:
    """`_objects` unpacks `collect_subfields`'s answer into three (a change would send every list
    to graphql-core's path, silently: `test_executor.py` counts that too)."""
    assert CollectedFields._fields == (
        "grouped_field_set",
        "new_defer_usages",
        "forbidden_directive_instances",
    )


@pytest.mark.parametrize("ours", list(OVERRIDDEN), ids=lambda cls: cls.__name__)
def test_every_override_of_a_strawberry_method_is_checked_here(ours: type[Any]) -> None:
    roots = {"strawberry", "graphql"}
    found = set().union(*(overrides(ours, root) for root in roots))
    assert found == set(OVERRIDDEN[ours])


@pytest.mark.parametrize(
    ("ours", "name"),
    [(ours, name) for ours, methods in OVERRIDDEN.items() for name in methods],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_overridden_method_has_the_parameters_we_were_written_against(ours: type[Any], name: str) -> None:
    method = library_method(ours, name, "strawberry") or library_method(ours, name, "graphql")
    assert method is not None, f"Strawberry no longer has {ours.__mro__[1].__name__}.{name}"
    missing = missing_parameters(getattr(method, "__func__", method), OVERRIDDEN[ours][name])
    assert not missing, f"{name} lost or moved {missing}: update gql_jobs/graphql for the new Strawberry"


@pytest.mark.parametrize(("owner", "name"), USED, ids=lambda value: getattr(value, "__name__", value))
def test_member_we_use_exists(owner: type[Any], name: str) -> None:
    assert hasattr(owner, name), f"Strawberry's {owner.__name__}.{name} is gone"


@pytest.mark.parametrize(("function", "parameters"), CALLED, ids=lambda value: getattr(value, "__name__", ""))
def test_what_the_short_path_calls_takes_what_it_passes(function: Any, parameters: list[str]) -> None:
    missing = missing_parameters(function, parameters)
    assert not missing, f"{function.__qualname__} lost or moved {missing}: update gql_jobs/graphql/direct.py"


def test_the_short_path_runs_as_strawberry_s_execute_does() -> None:
    """`Schema.execute` runs graphql-core's incremental executor with the schema's execution
    context class and Strawberry's `optimized_is_awaitable`; `direct.py` runs the same, and turns
    itself off when the schema has directives (Strawberry then adds its `DirectivesExtension`)."""
    source = inspect.getsource(Schema._get_execute_function) + inspect.getsource(Schema._execute_operation)
    assert "experimental_execute_incrementally" in source
    assert "is_awaitable=optimized_is_awaitable" in source
    assert "execution_context_class_kwargs(self.execution_context_class)" in source
    assert "if self.directives:" in inspect.getsource(Schema.get_extensions)
    assert "optimized_is_awaitable" in vars(strawberry.execution)


def test_execution_context_has_the_fields_we_read_and_set() -> None:
    fields = set(ExecutionContext.__dataclass_fields__)
    assert set(CONTEXT_FIELDS) <= fields, set(CONTEXT_FIELDS) - fields


def test_the_validation_rules_and_errors_we_import_exist() -> None:
    from graphql.validation.rules import overlapping_fields_can_be_merged  # noqa: F401
    from graphql.validation.validate import ValidationAbortedError  # noqa: F401
    from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule  # noqa: F401
    from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule  # noqa: F401


def test_graphql_core_nodes_are_what_templates_build() -> None:
    """`templates.py` derives documents by making graphql-core's AST nodes without `__init__`: each
    a frozen dataclass whose fields live in its `__dict__`, with a `Location` of five slots."""
    document = parse('query Q($a: Int = 1) { job(id: "x") { id } }')
    for node in (document, document.definitions[0]):
        assert dataclasses.is_dataclass(node)
        assert {field.name for field in dataclasses.fields(node)} <= set(vars(node))  # and token_count
    assert set(Location.__slots__) == {"start", "end", "start_token", "end_token", "source"}
