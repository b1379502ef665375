"""An HTTP route taken straight from inside our middleware, past FastAPI's own layers (issue #20).

Behind the app's middleware (request ids, CORS, the body guards) FastAPI puts three layers of its
own before its router: `ExceptionMiddleware` (FastAPI's exception handlers), `AsyncExitStack`
(for dependencies that `yield`), then the router, which tries each route in turn. GraphQL's route
is a plain ASGI app, first of the routes, with no dependencies and raising none of the exceptions
those handlers answer (its view answers its own refusals), so they only cost it: the more because
a request's task is resumed through every coroutine frame it awaits in, once per reply from
Redis. Measured on `gql-jobs serve` under 16 connections, `job(id)` cost 455 us of CPU through
them and 401 taken directly (three alternating rounds, medians).

`DirectRoute` is the innermost of the app's middleware. An HTTP request the route matches (as the
router would match it: `Route.matches`, with the same child scope) is handled by the route
itself; anything else, WebSockets included, goes on to FastAPI as before. An exception the route
raises still reaches `ServerErrorMiddleware`, outside all middleware, as before.
"""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoute:
    """ASGI middleware: HTTP requests for `route` are handled by it, not by FastAPI's router."""

    def __init__(self, app: ASGIApp, route: Route) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match, child_scope = self.route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                await self.route.handle(scope, receive, send)
                return
        await self.app(scope, receive, send)
