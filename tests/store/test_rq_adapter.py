"""The private RQ names we rely on, held to the installed RQ, and kept inside `store/rq_adapter.py`.

An RQ release that renames or reshapes one of them fails here, by name, instead of failing
workers at run time (RQ 3.0 dropped `Worker.current_job_working_time`: a 2.x-style heartbeat
override raised `AttributeError` on the first job, and the supervisor restarted it for ever).

Both supported majors (RQ 2.12 and 3.0) are checked, each against what the adapter uses of it:
the tables below say which names and shapes belong to which major.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import rq
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation
from rq.job import Job
from rq.scheduler import RQScheduler

from gql_jobs.store import rq_adapter
from gql_jobs.store.rq_format import SERIALIZER

PACKAGE = Path(__file__).resolve().parents[2] / "gql_jobs"
ADAPTER = PACKAGE / "store" / "rq_adapter.py"
OWNERS: dict[str, Any] = {"Job": Job, "Queue": Queue, "Worker": Worker, "RQScheduler": RQScheduler}

POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
#: The methods the adapter overrides or calls: the leading parameters it was written against
#: (RQ 2.12), by name and kind. Any parameter after them must be optional, so a new optional one
#: passes; a renamed, moved or new required one fails.
METHODS: dict[tuple[str, str], list[tuple[str, inspect._ParameterKind]]] = {
    ("Job", "_handle_success"): [("self", POSITIONAL), ("result_ttl", POSITIONAL), ("pipeline", POSITIONAL)],
    ("Job", "_handle_failure"): [("self", POSITIONAL), ("exc_string", POSITIONAL), ("pipeline", POSITIONAL)],
    ("Queue", "_enqueue_job"): [("self", POSITIONAL), ("job", POSITIONAL)],
    ("Worker", "_set_ip_address"): [("self", POSITIONAL), ("connection", POSITIONAL)],
}
if rq_adapter.HAS_RQ3:
    METHODS[("Job", rq_adapter.RQ3_FETCH_STATUS)] = [("self", POSITIONAL)]
#: The attributes the adapter reads, set by each class's `__init__`: their value on a new instance.
ATTRIBUTES: dict[tuple[str, str], object] = {
    ("Job", "_exc_info"): None,
    ("Job", "_dependency_ids"): [],
    ("Worker", "_shutdown_requested_date"): None,
    ("RQScheduler", "_process"): None,
}
if not rq_adapter.HAS_RQ3:  # RQ 3 passes the working time to `get_heartbeat_ttl` instead
    ATTRIBUTES[("Worker", "current_job_working_time")] = 0
#: Public methods the adapter overrides or calls whose shape it depends on, per RQ major (RQ 3.0
#: changed the heartbeat's and added the others).
OVERRIDDEN: dict[tuple[str, str], list[tuple[str, inspect._ParameterKind]]] = (
    {
        ("Worker", "get_heartbeat_ttl"): [
            ("self", POSITIONAL),
            ("job", POSITIONAL),
            ("working_time", POSITIONAL),
        ],
        ("RateLimit", "__init__"): [("self", POSITIONAL), ("key", POSITIONAL), ("concurrency", POSITIONAL)],
        ("command", "send_stop_execution_command"): [
            ("connection", POSITIONAL),
            ("job_id", POSITIONAL),
            ("execution_id", POSITIONAL),
        ],
        ("Job", "get_executions"): [("self", POSITIONAL)],
    }
    if rq_adapter.HAS_RQ3
    else {
        ("Worker", "get_heartbeat_ttl"): [("self", POSITIONAL), ("job", POSITIONAL)],
        ("command", "send_stop_job_command"): [
            ("connection", POSITIONAL),
            ("job_id", POSITIONAL),
            ("serializer", POSITIONAL),
        ],
    }
)
if rq_adapter.HAS_RQ3:
    OWNERS["RateLimit"] = importlib.import_module("rq.rate_limit").RateLimit
OWNERS["command"] = importlib.import_module("rq.command")


def test_the_installed_rq_is_one_the_adapter_knows() -> None:
    """A new major (or a minor past the pyproject cap) must be read and added here first."""
    assert rq_adapter.RQ_VERSION[0] in (2, 3), rq_adapter.RQ_VERSION
    assert rq_adapter.RQ_VERSION >= (2, 12) and rq_adapter.RQ_VERSION < (3, 1), rq_adapter.RQ_VERSION
    assert int(rq.__version__.split(".")[0]) == rq_adapter.RQ_MAJOR


def test_every_private_name_of_the_adapter_is_checked_here() -> None:
    checked = {*METHODS, *ATTRIBUTES}
    assert checked == rq_adapter.PRIVATE_NAMES


@pytest.mark.parametrize(("owner", "name"), sorted({*METHODS, *OVERRIDDEN}))
def test_method_has_the_signature_the_adapter_was_written_against(owner: str, name: str) -> None:
    method = getattr(OWNERS[owner], name, None)
    assert callable(method), f"RQ's {owner}.{name} is gone: update gql_jobs/store/rq_adapter.py"
    parameters = list(inspect.signature(method).parameters.values())
    expected = METHODS.get((owner, name)) or OVERRIDDEN[(owner, name)]
    leading = [(p.name, p.kind) for p in parameters[: len(expected)]]
    assert leading == expected, f"RQ's {owner}.{name} changed: {inspect.signature(method)}"
    for extra in parameters[len(expected) :]:
        optional = extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        assert optional, f"RQ's {owner}.{name} takes a new required parameter: {extra.name}"


def _instance(owner: str) -> Any:
    connection = fakeredis.FakeRedis()
    if owner == "Job":
        return Job("some-job", connection=connection, serializer=SERIALIZER)
    if owner == "Worker":
        return Worker(["default"], connection=connection, serializer=SERIALIZER)
    return RQScheduler(["default"], connection=connection, serializer=SERIALIZER)


@pytest.mark.parametrize(("owner", "name"), sorted(ATTRIBUTES))
def test_attribute_exists_on_a_new_instance(owner: str, name: str) -> None:
    instance = _instance(owner)
    assert hasattr(instance, name), f"RQ's {owner} no longer sets {name}: update gql_jobs/store/rq_adapter.py"
    assert getattr(instance, name) == ATTRIBUTES[(owner, name)]


def test_the_adapter_functions_read_what_rq_stores() -> None:
    connection = fakeredis.FakeRedis()
    queue = Queue("default", connection=connection, serializer=SERIALIZER)
    first = queue.enqueue("tests.fixtures.add", 1, 2)
    second = queue.enqueue("tests.fixtures.add", 3, 4, depends_on=first)
    restored = Job.fetch(second.id, connection=connection, serializer=SERIALIZER)
    assert rq_adapter.dependency_ids(restored) == [first.id]
    assert rq_adapter.stored_traceback(restored) is None
    worker = Worker([queue], connection=connection, serializer=SERIALIZER)
    assert not rq_adapter.shutdown_requested(worker)
    assert rq_adapter.scheduler_process(worker) is None  # no scheduler started


def test_heartbeat_hook_gets_the_working_time() -> None:
    seen: list[float] = []

    class Probe(rq_adapter.HeartbeatWorker):
        def heartbeat_ttl(self, job: Job, working_time: float) -> int:
            seen.append(working_time)
            return 7

    worker = Probe(["default"], connection=fakeredis.FakeRedis(), serializer=SERIALIZER)
    job = Job("j", connection=worker.connection)
    if rq_adapter.HAS_RQ3:  # RQ 3 passes it, as a keyword (`Worker.maintain_heartbeats`)
        assert worker.get_heartbeat_ttl(job, working_time=12.5) == 7
        assert worker.get_heartbeat_ttl(job) == 7  # as a job starts: no working time yet
        assert seen == [12.5, 0.0]
    else:  # RQ 2 keeps it on the worker, and passes none
        vars(worker)[rq_adapter.RQ2_WORKING_TIME] = 12.5
        assert worker.get_heartbeat_ttl(job) == 7
        assert seen == [12.5]


def test_the_default_heartbeat_is_rqs_own() -> None:
    worker = rq_adapter.HeartbeatWorker(["default"], connection=fakeredis.FakeRedis(), serializer=SERIALIZER)
    job = Job("j", connection=worker.connection)
    job.timeout = 30
    assert worker.heartbeat_ttl(job, 0.0) == Worker.get_heartbeat_ttl(worker, job)


# -- nothing else touches a private RQ name -------------------------------------------------------

#: RQ 2's working-time attribute is the adapter's alone on either major (on RQ 3 it is gone).
PRIVATE_ATTRIBUTES = {name for _, name in rq_adapter.PRIVATE_NAMES} | {rq_adapter.RQ2_WORKING_TIME}


def private_rq_uses(source: str) -> list[str]:
    """Where `source` touches a private RQ name: an attribute (or a method defined) named like one
    the adapter owns, or an underscore attribute of a name imported from `rq`."""
    tree = ast.parse(source)
    from_rq = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rq"
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_ATTRIBUTES:
                found.append(f"line {node.lineno}: .{node.attr}")
            elif (
                node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in from_rq
            ):
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in PRIVATE_ATTRIBUTES:
            found.append(f"line {node.lineno}: def {node.name}")
    return found


def test_the_scan_catches_the_known_uses() -> None:
    known = """
from rq import Queue
from rq.exceptions import InvalidJobOperation
from rq.job import Job
def f(worker, job, queue):
    worker._shutdown_requested_date
    worker.scheduler._process
    job._exc_info, job._dependency_ids
    queue._enqueue_job(job)
    Queue._enqueue_job(queue, job)
    Job._private_thing
    worker.current_job_working_time
class J(Job):
    def _handle_success(self): super()._handle_success()
    def _handle_failure(self): ...
"""
    assert len(private_rq_uses(known)) == 11


def test_a_worker_starts_on_a_server_whose_client_info_redis_py_cannot_parse() -> None:
    """`gql-jobs dev`'s in-memory Redis (fakeredis over TCP) answers CLIENT INFO in a shape redis-py
    fails to parse; RQ 3 asks for it as a worker starts."""

    class Odd(fakeredis.FakeRedis):
        def client_info(self, **kwargs: Any) -> dict[str, str | int]:
            raise ValueError("not enough values to unpack (expected 2, got 1)")

    worker = rq_adapter.HeartbeatWorker(["default"], connection=Odd(), serializer=SERIALIZER)
    assert worker.ip_address  # RQ's own answer, or "unknown": either way the worker starts


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p != ADAPTER)
)
def test_no_module_but_the_adapter_touches_a_private_rq_name(module: str) -> None:
    assert private_rq_uses((PACKAGE / module).read_text()) == [], "go through gql_jobs.store.rq_adapter"


# -- what differs between the majors, through the adapter -----------------------------------------


def test_a_job_no_worker_runs_cannot_be_stopped_on_either_major() -> None:
    """RQ 3 stops executions, RQ 2 jobs: both refuse a job nothing runs (`manage.stop_running`)."""
    connection = fakeredis.FakeRedis()
    job = Queue("default", connection=connection, serializer=SERIALIZER).enqueue("tests.fixtures.add", 1, 2)
    with pytest.raises(InvalidJobOperation):
        rq_adapter.stop_running_job(connection, job.id)


def test_rq3_features_are_there_exactly_on_rq3() -> None:
    connection = fakeredis.FakeRedis()
    if rq_adapter.HAS_RQ3:
        limit = rq_adapter.rate_limit("k", 2)
        assert (limit.key, limit.concurrency) == ("k", 2)
        assert rq_adapter.ready_registry_template() == f"{rq_adapter.key_prefix()}:ready:{{0}}"
        assert rq_adapter.rate_limited_keys(connection) == []
    else:
        with pytest.raises(RuntimeError, match=r"RQ >= 3\.0"):
            rq_adapter.rate_limit("k", 2)
        assert rq_adapter.ready_registry_template() is None
        assert rq_adapter.rate_limited_keys(connection) == []
        assert rq_adapter.key_prefix() == "rq"
