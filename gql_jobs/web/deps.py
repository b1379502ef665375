"""What both transports take from a request: the job service, the live-updates hub and the caller.

Plain functions of the connection, called by the handlers themselves: as FastAPI dependencies,
each was a sub-dependency FastAPI solved per request (`solve_dependencies` was a sixth of a REST
submission's CPU, issue #20), for values that need no request data but the app's state and two
headers. None of them adds anything to the OpenAPI document.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gql_jobs.auth import InvalidKeyError, KeyStore, Principal, key_from_headers
from gql_jobs.service.jobs import JobService
from gql_jobs.service.live import LiveUpdates


def service_of(connection: HTTPConnection) -> JobService:
    """The process's job service (an `HTTPConnection`, so that WebSocket routes can use it too)."""
    service: JobService = connection.app.state.service
    return service


def live_of(connection: HTTPConnection) -> LiveUpdates:
    live: LiveUpdates = connection.app.state.live
    return live


def caller_of(connection: HTTPConnection) -> Principal | None:
    """Who sent the request: `None` without a valid key (the service then refuses what needs one)."""
    headers = connection.headers
    return caller_for(connection.app.state.keys, headers.get("authorization"), headers.get("x-api-key"))


def caller_for(keys: KeyStore, authorization: str | None, api_key: str | None) -> Principal | None:
    """`caller_of`, from the two headers (read by the caller: GraphQL's short path reads a
    request's headers once, from its ASGI scope)."""
    key = key_from_headers(authorization, api_key)
    try:
        return keys.principal_for(key)
    except InvalidKeyError:
        return None
