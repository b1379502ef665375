"""The job console at /console: a page for people who would rather look than read.

Plain HTML and one small ES module (`static/console/console.js`), no framework. It is an ordinary
client of the public GraphQL API: queries and mutations over fetch, live updates from the
`jobEvents` subscription over its own ~70-line graphql-transport-ws client, the API key kept in
sessionStorage and sent as `Authorization: Bearer` (and in `connection_init` for the WebSocket).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gql_jobs.web.static_assets import csp, render_page, root_path

PATH = "/console"
FOLDER = "console"
GRAPHQL_PATH = "/graphql"
CONSOLE_CSP = csp()


def router(*, graphiql: bool) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get(PATH)
    def console_page(request: Request) -> HTMLResponse:
        root = root_path(request)
        values = {"endpoint": root + GRAPHQL_PATH, "graphiql": root + GRAPHQL_PATH if graphiql else ""}
        return render_page(request, "console.html", CONSOLE_CSP, values)

    return routes
