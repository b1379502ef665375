"""The `gql-jobs` command: parses arguments and delegates; no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from gql_jobs import __version__
from gql_jobs.cli_client import add_client_commands
from gql_jobs.settings import Settings, SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if getattr(args, "client_command", None):  # a client of a server: none of the server's settings
        from gql_jobs.cli_client import run  # noqa: PLC0415

        sys.exit(run(args))
    try:
        settings = load_settings()
    except SettingsError as exc:
        sys.exit(f"gql-jobs: {exc}")
    sys.exit(args.handler(settings, args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gql-jobs", description="GraphQL and REST API over RQ jobs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API (needs a reachable Redis)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--no-access-log", action="store_true", help="turn the access log off")
    serve.add_argument("--proxy-headers", action="store_true", help="trust X-Forwarded-* headers")
    serve.add_argument(
        "--forwarded-allow-ips", default="127.0.0.1", help="proxies whose X-Forwarded-* headers are trusted"
    )
    serve.add_argument("--graceful-timeout", type=int, default=30, help="seconds to finish requests on stop")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run an RQ worker on the given queues")
    worker.add_argument("queues", nargs="*", metavar="QUEUE", help="queues in priority order")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.add_argument("--pool", type=int, default=None, metavar="N", help="run N workers (RQ pool)")
    worker.add_argument("--log-level", default="INFO")
    worker.set_defaults(handler=_worker)

    dev = commands.add_parser("dev", help="API + worker in one command, in-memory Redis if none is set")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(handler=_dev)

    create_key = commands.add_parser(
        "create-key", help="make an API key and print its GQL_JOBS_API_KEYS entry"
    )
    create_key.add_argument("--principal", required=True, help="the tenant the key stands for")
    create_key.add_argument(
        "--scopes", default="submit,read", help="comma-separated: submit, read, metrics, admin"
    )
    create_key.set_defaults(handler=_create_key)

    export = commands.add_parser("export-schema", help="print the GraphQL SDL")
    export.add_argument("--output", default=None, help="write to this file instead of stdout")
    export.set_defaults(handler=_export_schema)

    possible = commands.add_parser(
        "possible-types",
        help="print each union and interface with its member types, as JSON for Apollo's possibleTypes",
    )
    possible.add_argument("--output", default=None, help="write to this file instead of stdout")
    possible.set_defaults(handler=_possible_types)
    add_client_commands(commands)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from gql_jobs.observability import logging_config  # noqa: PLC0415
    from gql_jobs.web.server import GuardedHttpToolsProtocol  # noqa: PLC0415

    production_defaults(settings)
    if (problem := _startup_problem(settings)) is not None:
        print(f"gql-jobs serve: {problem}", file=sys.stderr)
        return 2
    if args.workers > 1:
        multiprocess_metrics_dir()

    from gql_jobs.app import redis_problem  # noqa: PLC0415 (after the metrics directory is set)

    problem = redis_problem(settings)
    if problem is not None:
        print(f"gql-jobs serve: {problem}", file=sys.stderr)
        return 2
    uvicorn.run(
        "gql_jobs.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=not args.no_access_log,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=args.graceful_timeout,
        http=GuardedHttpToolsProtocol,  # with the header deadline (GQL_JOBS_HEADER_TIMEOUT)
        log_config=logging_config(settings.log_format, settings.log_level),
    )
    return 0


def _startup_problem(settings: Settings) -> str | None:
    """What would stop the process soon after start (tracing asked for but not installed, a task
    module that does not import), found here: one line, not a traceback later."""
    from gql_jobs import tracing  # noqa: PLC0415

    return tracing.problem() or _task_problem(settings)


def _task_problem(settings: Settings) -> str | None:
    """Why the task modules cannot be imported, if they cannot: found here, not in a traceback later."""
    from gql_jobs.errors import TaskModuleError  # noqa: PLC0415
    from gql_jobs.tasks import TaskRegistry, task_modules  # noqa: PLC0415

    try:
        TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    except TaskModuleError as exc:
        return str(exc)
    return None


def production_defaults(settings: Settings) -> None:
    """`serve` is for production: the IDE and introspection stay off unless asked for explicitly,
    in the environment or in `.env` (an environment default would otherwise hide `.env`'s value)."""
    for field, name in (("graphiql", "GQL_JOBS_GRAPHIQL"), ("introspection", "GQL_JOBS_INTROSPECTION")):
        if field not in settings.model_fields_set:
            os.environ.setdefault(name, "false")


def multiprocess_metrics_dir() -> None:
    """Several uvicorn processes share their metrics through files in one fresh directory."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gql-jobs-metrics-")


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from gql_jobs.errors import RedisNotConfiguredError, TaskModuleError  # noqa: PLC0415
    from gql_jobs.observability import configure_logging  # noqa: PLC0415

    configure_logging(settings.log_format, args.log_level)
    from gql_jobs import tracing  # noqa: PLC0415
    from gql_jobs.worker.supervisor import run_worker  # noqa: PLC0415

    if (problem := tracing.problem()) is not None:
        print(f"gql-jobs worker: {problem}", file=sys.stderr)
        return 2

    try:
        clean = run_worker(
            settings, args.queues, burst=args.burst, pool_size=args.pool, logging_level=args.log_level
        )
    except (RedisNotConfiguredError, TaskModuleError) as exc:
        print(f"gql-jobs worker: {exc}", file=sys.stderr)
        return 2
    return 0 if clean else 1


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from gql_jobs.dev import run_dev  # noqa: PLC0415
    from gql_jobs.errors import RedisNotConfiguredError  # noqa: PLC0415

    if (problem := _startup_problem(settings)) is not None:
        print(f"gql-jobs dev: {problem}", file=sys.stderr)
        return 2
    try:
        return run_dev(settings, args.host, args.port)
    except RedisNotConfiguredError as exc:
        print(f"gql-jobs dev: {exc}", file=sys.stderr)
        return 2


def _create_key(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError  # noqa: PLC0415

    from gql_jobs.auth import Scope, new_key  # noqa: PLC0415

    valid = ", ".join(Scope)
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    if unknown := [s for s in scopes if s not in set(Scope)]:
        return _create_key_error(f"--scopes: {', '.join(map(repr, unknown))} is not a scope; valid: {valid}")
    try:
        key, entry = new_key(args.principal, [Scope(s) for s in scopes])
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        option = {"principal": "--principal", "scopes": "--scopes"}.get(str(error["loc"][0]), "")
        message = error["msg"].removeprefix("Value error, ")
        if option == "--scopes":
            message += f" (valid: {valid})"
        return _create_key_error(f"{option}: {message}")
    print(f"API key (give it to the client; it is not stored anywhere): {key}")
    print(f"Entry for GQL_JOBS_API_KEYS (merge into its JSON object): {entry}")
    return 0


def _create_key_error(message: str) -> int:
    print(f"gql-jobs create-key: {message}", file=sys.stderr)
    return 2


def _export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from gql_jobs.graphql.schema import sdl  # noqa: PLC0415

    return _write(sdl(), args.output)


def _possible_types(settings: Settings, args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from gql_jobs.graphql.schema import possible_types  # noqa: PLC0415

    return _write(json.dumps(possible_types(), indent=2) + "\n", args.output)


def _write(text: str, output: str | None) -> int:
    if output:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0
