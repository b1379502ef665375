"""Mounting GraphQL at /graphql on the FastAPI app, with API keys checked on WebSocket connect.

Strawberry's ASGI app on plain Starlette routes rather than its FastAPI `GraphQLRouter`: the
router runs every request through FastAPI's dependency solving (four dependencies: the context,
its wrapper, the root value, the endpoint), measured at about a tenth of a `submitJob`'s CPU
(issue #7). The ASGI app builds the same context directly (`context.build_context`); HTTP,
WebSocket and SSE handling, GraphiQL and origin checks are Strawberry's own either way.

WebSockets are admitted on `connection_init` (`on_ws_connect`): a valid key, then one of the
principal's `connections` slots (`ws_max_connections_per_principal`), released when the socket
ends however it ends (the handlers' `handle`). Refusals carry a reason: graphql-transport-ws closes
4403 with it, legacy graphql-ws sends it in `connection_error`. Legacy graphql-ws would run a second
`connection_init` (Strawberry re-runs `on_ws_connect`, switching the principal); it is refused.

Requests refused before GraphQL runs (a body that is not JSON, or nested too deeply, a missing
query, a mutation over GET, a batch while batching is off) are answered as GraphQL errors with
`extensions.code`, not as Strawberry's plain text.

Over HTTP the answer's type follows the client's `Accept` (`negotiation.py`): the spec's
`application/graphql-response+json`, where a request error (document, variables) is a 400 without
`data`, or legacy `application/json` (200, `data: null`); SSE only when preferred to JSON;
Apollo's multipart subscriptions. The graphql-http audit holds this (`tests/integration/test_clients.py`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import FastAPI
from graphql import OperationType as GraphQLOperationType
from graphql import get_operation_ast
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, GraphQLRequestProtocol, process_result
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.streaming import HTTPStreamTransport, MultipartSubscriptionTransport, SSETransport
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage as TransportConnectionInit,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionErrorMessage
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage as LegacyConnectionInit
from strawberry.types import ExecutionResult
from strawberry.types.execution import SubscriptionExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from gql_jobs import jsoncodec
from gql_jobs.auth import InvalidKeyError, key_from_headers
from gql_jobs.errors import ErrorCode
from gql_jobs.graphql.context import Context, build_context, http_context
from gql_jobs.graphql.direct import DirectExecution, PlainRequest
from gql_jobs.graphql.negotiation import APPLICATION_JSON, prefers_event_stream, response_media_type
from gql_jobs.graphql.persisted import Resolved
from gql_jobs.graphql.schema import GuardedSchema, build_schema
from gql_jobs.settings import Settings
from gql_jobs.web.cors import OriginPolicy
from gql_jobs.web.ide import graphiql_page

PATH = "/graphql"

#: Deepest nesting of arrays and objects accepted in a GraphQL request's JSON (variables, WebSocket
#: messages): far above any sensible payload, far below Python's recursion limit, so that nothing
#: that walks the value later (validation, RQ's serializer, encoding the answer) can overflow on it.
#: A 1,000-deep body used to fail inside `json.loads` with a RecursionError: a 500.
MAX_JSON_DEPTH = 128

#: `extensions.code` of Strawberry's own refusals, by HTTP status.
CODES = {400: ErrorCode.BAD_REQUEST, 404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


#: A request's body and what it decoded to, when the short path read it before declining it
#: (each request is a task of its own: the value is the request's).
_DECODED: ContextVar[tuple[bytes, object] | None] = ContextVar("gql_jobs_decoded_body", default=None)


class JSONTooDeepError(json.JSONDecodeError):
    """Valid JSON, but nested too deeply: for WebSockets it is an invalid message like any other."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_JSON_DEPTH} levels deep", "", 0)


class Refusal(HTTPException):
    """A request refused before GraphQL runs, with the `extensions.code` to answer."""

    def __init__(self, status_code: int, reason: str, code: ErrorCode) -> None:
        super().__init__(status_code, reason)
        self.code = code


#: Why a subscription sent as a plain HTTP request is refused.
SUBSCRIPTION_OVER_HTTP = (
    "A subscription over HTTP needs a streaming response: send `Accept: text/event-stream` "
    "(graphql-sse) or `Accept: multipart/mixed;subscriptionSpec=1.0` (Apollo Client), or "
    "subscribe over a WebSocket (graphql-transport-ws)"
)


#: Why a JSON body that is neither an operation nor a batch of them is refused.
NOT_AN_OPERATION = "The request body must be a JSON object (an operation) or, with batching on, an array"


#: Why a batch (a JSON array of operations) is refused when batching is off.
BATCHING_OFF = (
    "Batching is off on this server: send one operation per request (Apollo: HttpLink rather than "
    "BatchHttpLink); GQL_JOBS_MAX_BATCH_OPERATIONS turns it on"
)


class PreferredSSETransport(SSETransport):
    """Strawberry's SSE, chosen only when the client prefers it to JSON (see `negotiation`)."""

    def accepts(self, accept: str) -> bool:
        return prefers_event_stream(accept)


class RefusedConnectionError(Exception):
    """`on_ws_connect` refuses a connection and says why (Strawberry's own `ConnectionRejectionError`
    closes graphql-transport-ws with a bare "Forbidden")."""

    def __init__(self, close_code: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code
        self.message = message


def _release_connection(context: Context) -> None:
    if context.connection_slot is not None:
        context.live.connections.release(context.connection_slot)
        context.connection_slot = None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's graphql-transport-ws handler, with our refusals and the slot released at the end."""

    async def handle_connection_init(self, message: TransportConnectionInit) -> None:
        try:
            await super().handle_connection_init(message)
        except RefusedConnectionError as refusal:
            await self.websocket.close(code=refusal.close_code, reason=refusal.message[:123])

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            _release_connection(self.context)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """Strawberry's graphql-ws handler, likewise; refusals are `connection_error` messages."""

    async def handle_connection_init(self, message: LegacyConnectionInit) -> None:
        try:
            await super().handle_connection_init(message)
        except RefusedConnectionError as refusal:
            payload: dict[str, object] = {
                "message": refusal.message,
                "extensions": {"code": refusal.code.value},
            }
            await self.send_message(ConnectionErrorMessage(type="connection_error", payload=payload))
            await self.websocket.close(code=refusal.close_code, reason=refusal.message[:123])

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            _release_connection(self.context)


@dataclasses.dataclass
class ByDocumentId(GraphQLRequestData):
    """A request naming its document by `documentId` (and sending no `query`)."""

    document_id: object = None


async def _document_id(request: AsyncHTTPRequestAdapter, view: JobsGraphQL) -> object:
    """The request's `documentId`, if any: a query parameter, or a member of the JSON body (read
    again only when it mentions one: Strawberry keeps none of the body it decoded)."""
    if request.method == "GET":
        return request.query_params.get("documentId")
    body = await request.get_body()
    marker = b'"documentId"' if isinstance(body, bytes) else '"documentId"'
    if marker not in body:
        return None
    data = view.decode_json(body)
    return data.get("documentId") if isinstance(data, dict) else None


class NegotiatedResponse(Response):
    """The sub-response of an HTTP request, knowing the JSON type the client is answered with."""

    def __init__(self, media_type: str) -> None:
        super().__init__()
        self.status_code = None  # type: ignore[assignment]  # as Strawberry's: unset until chosen
        del self.headers["content-length"]
        self.media_type = media_type


class JobsGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = {
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
        GRAPHQL_SSE_PROTOCOL: PreferredSSETransport,
    }

    def __init__(self, schema: GuardedSchema, *args: Any, origins: OriginPolicy, **kwargs: Any) -> None:
        super().__init__(schema, *args, **kwargs)
        self.origins = origins
        self.persisted = schema.persisted
        self.documents = schema.documents
        self.direct = DirectExecution(schema)
        # What the short path does not call: a view overriding any must go Strawberry's way.
        hooks = ("get_root_value", "_handle_errors")
        ours = ("get_context", "get_sub_response", "process_result", "create_response", "encode_json")
        if any(getattr(type(self), hook) is not getattr(GraphQL, hook) for hook in hooks) or any(
            getattr(type(self), hook) is not getattr(JobsGraphQL, hook) for hook in ours
        ):
            self.direct.enabled = False

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """The CORS policy's origins (`web.cors`): browsers apply no CORS to WebSockets."""
        return self.origins.allows(origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's, but with refusals as GraphQL JSON rather than text/plain, and a plain
        JSON POST of a checked operation answered by the short path (`direct.py`)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        decoded = _DECODED.set(None)
        post = PlainPost.of(scope) if self.direct.enabled and scope["method"] == "POST" else None
        try:
            response: ASGIApp | None = None
            context: Context | None = None
            if post is not None:
                context = http_context(scope["app"].state, post.authorization, post.api_key, post.accept)
                body = await read_body(receive)
                response = await self._run_directly(body, post, context)
                receive = _replayed(body, receive)  # for Strawberry's view, should it decline
            if response is None:  # Strawberry's view, with the context if it is made already
                request = Request(scope=scope, receive=receive)
                run = self.run(request) if context is None else self.run(request, context=context)
                response = await run
        except HTTPException as exc:
            accept = post.accept if post is not None else Headers(scope=scope).get("accept")
            response = refusal_response(exc, response_media_type(accept))
        finally:
            _DECODED.reset(decoded)
        await response(scope, receive, send)

    async def _run_directly(self, body: bytes, post: PlainPost, context: Context) -> ASGIApp | None:
        """The answer to a plain POST of one checked operation (`direct.py`), or None to send the
        request through Strawberry's view (which reads the body again, as it was read here)."""
        try:
            data = self.decode_json(body)
        except (json.JSONDecodeError, UnicodeDecodeError):  # the view refuses it, with the reason
            return None
        _DECODED.set((body, data))  # the view's `parse_json` takes it, if it declines
        plain = PlainRequest.of(data)
        result = None if plain is None else await self.direct.execute(plain, context)
        if result is None:
            return None
        media_type = response_media_type(post.accept)
        processed = _processed(result, media_type)
        return JSONAnswer(_status_of(processed, None), jsoncodec.dumps_utf8(processed), media_type)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return NegotiatedResponse(response_media_type(request.headers.get("accept")))

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Strawberry's, without `data` for a request error when the client speaks the spec's
        `application/graphql-response+json` (`create_response` then answers 4xx)."""
        return _processed(result, response_media_type(request.headers.get("accept")))

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """JSON of the negotiated type; under `application/graphql-response+json`, a request error
        (no `data`) is a 400, or a 500 when it is an unexpected (masked) failure."""
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = sub_response.media_type or APPLICATION_JSON
        if isinstance(response_data, dict):
            response.status_code = _status_of(response_data, sub_response.status_code or None)
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry's, keeping `documentId` (the persisted-documents proposal's), which it drops,
        and refusing a JSON body that is neither an object nor an array (`1`, `null`, `"q"`):
        Strawberry calls `.get` on it, a 500."""
        if (
            request.method != "GET"
            and "application/json" in parse_content_type(request.content_type or "")[0]
        ):
            body = await request.get_body()  # what Strawberry reads next: decoded once (`_DECODED`)
            data = self.parse_json(body)
            if not isinstance(data, dict | list):
                raise Refusal(400, NOT_AN_OPERATION, ErrorCode.BAD_REQUEST)
            _DECODED.set((body, data))
        parsed = await super().parse_http_body(request)
        if not isinstance(parsed, GraphQLRequestData) or parsed.query is not None:
            return parsed
        document_id = await _document_id(request, self)
        if document_id is None:
            return parsed
        return ByDocumentId(**vars(parsed), document_id=document_id)

    async def execute_operation(  # Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """Strawberry's; a streamed operation (SSE, multipart) named by hash is looked up first
        (the others are in `execute_single`). A batch's answer is one JSON array: no operation
        of it may answer in parts (`incremental.py`)."""
        if isinstance(request_data, list):
            context.incremental = False
        if isinstance(request_data, GraphQLRequestData) and self._get_stream_transport(request_data.protocol):
            resolved = await self._resolve(request_data, context)
            if resolved.error is not None:
                return ExecutionResult(data=None, errors=[resolved.error])
            request_data = dataclasses.replace(request_data, query=resolved.query)
            if request_data.protocol == MULTIPART_SUBSCRIPTION_PROTOCOL and not self._is_subscription(
                request_data
            ):
                # Apollo's subscription `Accept` also names JSON: anything but a subscription
                # (or a document that does not parse or validate) is answered as JSON, not as a
                # masked error in a multipart stream that serves only subscriptions.
                request_data = dataclasses.replace(request_data, protocol="http")
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def execute_single(  # Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, for a document sent in full or named by hash (`persisted`): one sent
        with its hash is registered once it ran. A subscription that arrived without a streaming
        `Accept` is refused clearly (Strawberry would run it as a query: a masked error and a
        server traceback)."""
        resolved = await self._resolve(request_data, context)
        if resolved.error is not None:
            return ExecutionResult(data=None, errors=[resolved.error])
        if resolved.query != request_data.query:
            request_data = dataclasses.replace(request_data, query=resolved.query)
        result = await self._execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
        if resolved.register and resolved.query and not _is_request_error(result):
            await self.persisted.register(
                resolved.register, resolved.query, context.caller, context.service.persisted
            )
        return result

    def _is_subscription(self, request_data: GraphQLRequestData) -> bool:
        """Whether the operation to run is a valid subscription (the verdict is cached)."""
        if not isinstance(request_data.query, str):
            return False
        checked = self.documents.check(request_data.query)
        if checked.document is None or checked.errors:
            return False
        operation = get_operation_ast(checked.document, request_data.operation_name)
        return operation is not None and operation.operation is GraphQLOperationType.SUBSCRIPTION

    async def _resolve(self, request_data: GraphQLRequestData, context: Context) -> Resolved:
        return await self.persisted.resolve(
            request_data.query,
            request_data.extensions,
            getattr(request_data, "document_id", None),
            context.service.persisted,
        )

    async def _execute_single(self, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(**kwargs)
        except HTTPException as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type is OperationType.SUBSCRIPTION
            ):
                raise Refusal(400, SUBSCRIPTION_OVER_HTTP, ErrorCode.STREAMING_REQUIRED) from None
            raise

    def _validate_batch_request(
        self, request_data: list[GraphQLRequestData], protocol: GraphQLRequestProtocol
    ) -> None:
        """Strawberry's check of a batch (a JSON array of operations), with codes and reasons, and
        each member shaped as a single request must be (Strawberry reads them unchecked)."""
        config = self.schema.config.batching_config
        if config is None:
            raise Refusal(400, BATCHING_OFF, ErrorCode.BATCHING_DISABLED)
        limit = config["max_operations"]
        if not 0 < len(request_data) <= limit:
            reason = f"A batch holds 1 to {limit} operations; this one has {len(request_data)}"
            raise Refusal(400, reason, ErrorCode.TOO_MANY_OPERATIONS)
        if not all(_is_operation(item) for item in request_data):
            reason = "Each operation of a batch is an object with a string `query` and object `variables`"
            raise Refusal(400, reason, ErrorCode.BAD_REQUEST)
        super()._validate_batch_request(request_data, protocol)

    def decode_json(self, data: str | bytes) -> object:
        """`json.loads` (as `jsoncodec.loads` answers it), refusing nesting deeper than
        `MAX_JSON_DEPTH` (HTTP bodies, query parameters and WebSocket messages all come through here)."""
        try:
            value = jsoncodec.loads(data)
        except RecursionError:
            raise JSONTooDeepError from None
        if _openings(data) > MAX_JSON_DEPTH and nested_deeper(value, MAX_JSON_DEPTH):
            raise JSONTooDeepError
        return value

    def parse_json(self, data: str | bytes) -> Any:
        decoded = _DECODED.get()
        if decoded is not None and decoded[0] == data:  # decoded already by the short path (read again)
            return decoded[1]
        try:
            return self.decode_json(data)
        except JSONTooDeepError as exc:
            raise Refusal(400, exc.msg, ErrorCode.JSON_TOO_DEEP) from None
        except (json.JSONDecodeError, UnicodeDecodeError):  # bytes that are not UTF-8: `json` says so
            raise Refusal(400, "Unable to parse request body as JSON", ErrorCode.BAD_REQUEST) from None

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return await build_context(request)

    def encode_json(self, data: object) -> str:
        """Every answer (HTTP, WebSocket, SSE) as JSON any client parses: a non-finite number
        stored before submissions were checked is sent as null, not as bare `Infinity`; orjson's
        bytes where it can (`jsoncodec.dumps`)."""
        return jsoncodec.dumps(data)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Strawberry's (a GET without `query` that accepts HTML or `*/*`), but not for a GET that
        names its document by hash: Apollo Client 3 sends `Accept: */*` with its hashed GETs."""
        params = request.query_params
        return (
            params.get("extensions") is None
            and params.get("documentId") is None
            and super().should_render_graphql_ide(request)
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """GraphiQL from assets shipped in the package, not from a CDN (see gql_jobs/ide.py)."""
        return graphiql_page(request)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Browsers cannot set headers on a WebSocket: the key may come in `connection_init`'s
        payload instead (`{"Authorization": "Bearer <key>"}` or `{"X-API-Key": "<key>"}`)."""
        if context.connection_slot is not None:  # legacy graphql-ws: a second connection_init
            raise RefusedConnectionError(
                4429,
                ErrorCode.ALREADY_INITIALISED,
                "This connection is already initialised; open another one",
            )
        params: dict[str, Any] = (
            context.connection_params if isinstance(context.connection_params, dict) else {}
        )
        lowered = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
        key = key_from_headers(
            lowered.get("authorization"), lowered.get("x-api-key") or lowered.get("apikey")
        )
        if key is not None:
            try:
                context.caller = context.keys.principal_for(key)
            except InvalidKeyError:
                raise ConnectionRejectionError({"message": "Invalid API key"}) from None
        if context.caller is None:
            raise ConnectionRejectionError({"message": "A valid API key is required"})
        connections = context.live.connections
        if not connections.acquire(context.caller.name):
            raise RefusedConnectionError(
                4403,
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"Too many WebSocket connections: this API key may hold {connections.limit} at once "
                "in this server process",
            )
        context.connection_slot = context.caller.name
        return UNSET  # type: ignore[no-any-return]


def _processed(result: ExecutionResult, media_type: str) -> GraphQLHTTPResponse:
    """Strawberry's `process_result`, without `data` for a request error when the answer is of the
    spec's `application/graphql-response+json` (then a 4xx: `_status_of`)."""
    processed = process_result(result)
    if media_type != APPLICATION_JSON and result.data is None and _is_request_error(result):
        del processed["data"]
    return processed


def _status_of(processed: GraphQLHTTPResponse, chosen: int | None) -> int:
    """An answer's status: the one a resolver chose, else 200, but without `data` (a request error)
    a 400, or a 500 when it is an unexpected (masked) failure."""
    if chosen:
        return chosen
    if "data" not in processed:
        return 500 if _is_internal(processed) else 400
    return 200


class JSONAnswer:
    """A JSON answer of the short path, sent as Starlette's `Response` sends Strawberry's (the same
    two messages, the same headers in the same order), without building one."""

    __slots__ = ("body", "media_type", "status")

    def __init__(self, status: int, body: bytes, media_type: str) -> None:
        self.status = status
        self.body = body
        self.media_type = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"%d" % len(self.body)), (b"content-type", self.media_type.encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@dataclasses.dataclass(frozen=True, slots=True)
class PlainPost:
    """What the short path reads of a POST's headers, read once from its ASGI scope (the first of
    each name, as Starlette's `Headers.get` answers), when it is a plain JSON request."""

    accept: str | None
    authorization: str | None
    api_key: str | None

    @classmethod
    def of(cls, scope: Scope) -> PlainPost | None:
        """The headers of a plain JSON request (`_plain_json`), or None for any other."""
        found: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _READ and name not in found:
                found[name] = value.decode("latin-1")
        content_type = found.get(b"content-type")
        accept = found.get(b"accept")
        if content_type is None or not _plain_json(content_type, accept):
            return None
        return cls(accept, found.get(b"authorization"), found.get(b"x-api-key"))


#: The headers `PlainPost` reads (ASGI servers send names in lower case).
_READ = frozenset({b"content-type", b"accept", b"authorization", b"x-api-key"})


async def read_body(receive: Receive) -> bytes:
    """A request's body, as Starlette's `Request.body` reads it (`ClientDisconnect` if the client
    goes away first); one chunk, the usual case, is answered as the very bytes received."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` that first gives `body` again, in one message (what was read), then goes on."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def refusal_response(exc: HTTPException, media_type: str = APPLICATION_JSON) -> JSONResponse:
    code = exc.code if isinstance(exc, Refusal) else CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    error = {"message": exc.reason, "extensions": {"code": code.value}}
    return JSONResponse({"errors": [error]}, status_code=exc.status_code, media_type=media_type)


def _plain_json(content_type: str, accept: str | None) -> bool:
    """A JSON body, to be answered with JSON unless it is a subscription or asks for `@defer`
    (`direct.py` declines those): not a form (uploads), not a client preferring SSE, whose
    every answer streams. A client that merely accepts `multipart/mixed` (urql, Apollo Client)
    is answered one JSON document for any other operation, by either path."""
    if content_type.partition(";")[0].strip() != APPLICATION_JSON:  # as Strawberry reads it
        return False
    return not prefers_event_stream(accept)


def _is_operation(item: object) -> bool:
    """A batch member as Strawberry requires a single request to be (see `parse_http_body`)."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("query"), str | None)
        and isinstance(item.get("variables"), dict | None)
        and isinstance(item.get("extensions"), dict | None)
        and isinstance(item.get("operationName"), str | None)
    )


def _is_request_error(result: ExecutionResult) -> bool:
    """No data, and no error of a field: the operation did not run (a document or variables
    refused), as opposed to a non-null field's failure nulling `data` while it ran. An answer in
    parts (`@defer`, `@stream`) has no `errors` of its own: it ran."""
    errors = getattr(result, "errors", None)
    return bool(errors) and all(error.path is None for error in errors or ())


def _is_internal(response: GraphQLHTTPResponse) -> bool:
    return any(
        isinstance(error, dict)
        and (error.get("extensions") or {}).get("code") == ErrorCode.INTERNAL_SERVER_ERROR
        for error in response.get("errors") or ()
    )


def _openings(data: str | bytes) -> int:
    """An upper bound of the nesting depth, at C speed: most bodies need no walk at all."""
    if isinstance(data, bytes):
        return data.count(b"[") + data.count(b"{")
    return data.count("[") + data.count("{")


def nested_deeper(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels deep (walked level by level)."""
    level = [value]
    for _ in range(limit):
        level = [child for parent in level for child in _members(parent) if isinstance(child, dict | list)]
        if not level:
            return False
    return True


def _members(value: object) -> Iterable[object]:
    if isinstance(value, dict):
        return value.values()
    return value if isinstance(value, list) else ()


def install(app: FastAPI, settings: Settings) -> Route:
    """Mount GraphQL at `PATH`; answers its HTTP route (for `web.direct_route.DirectRoute`)."""
    graphql = JobsGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        subscription_protocols=(
            GRAPHQL_TRANSPORT_WS_PROTOCOL,
            GRAPHQL_WS_PROTOCOL,
            GRAPHQL_SSE_PROTOCOL,
            MULTIPART_SUBSCRIPTION_PROTOCOL,
        ),
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        origins=OriginPolicy.of(settings),
        keep_alive=True,
        keep_alive_interval=15,
    )
    # GraphQL documents itself (schema.graphql, introspection); keep it out of the OpenAPI schema.
    # First of the routes: the router tries them in order, and FastAPI's included routers (REST,
    # health) each walk their own routes; behind them, finding /graphql was ~10% of `{ __typename }`.
    route = Route(PATH, graphql, include_in_schema=False)
    app.router.routes[:0] = [route, WebSocketRoute(PATH, graphql)]
    return route
