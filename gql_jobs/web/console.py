"""The job console at /console: a page for people who would rather look than read.

Plain HTML and small ES modules (`static/console/`), no framework and no build step. It is an
ordinary client of the public GraphQL API: queries and mutations over fetch, live updates from the
`jobEvents` and `jobUpdates` subscriptions over its own ~70-line graphql-transport-ws client, the API
key kept in sessionStorage and sent as `Authorization: Bearer` (and in `connection_init` for the
WebSocket). Its charts use uPlot, vendored in `static/vendor-console/`.

Every view has a real URL, so it can be linked and bookmarked: the job list (`/console`, its
filters and page in the query string), one job (`/console/jobs/<id>`), queues, workers and charts.
They are all the same page; the module shows the view the path names.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gql_jobs.web.static_assets import csp, render_page, root_path

PATH = "/console"
FOLDER = "console"
FOLDERS = (FOLDER, "vendor-console")
VIEWS = ("queues", "workers", "charts")
GRAPHQL_PATH = "/graphql"
CONSOLE_CSP = csp()


def router(*, graphiql: bool, docs: bool = False) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    def console_page(request: Request) -> HTMLResponse:
        root = root_path(request)
        values = {
            "base": root + PATH,
            "endpoint": root + GRAPHQL_PATH,
            "graphiql": root + GRAPHQL_PATH if graphiql else "",
            "docs": root + "/docs" if docs else "",
        }
        return render_page(request, "console.html", CONSOLE_CSP, values)

    routes.add_api_route(PATH, console_page, methods=["GET"])
    for view in VIEWS:
        routes.add_api_route(f"{PATH}/{view}", console_page, methods=["GET"])

    @routes.get(PATH + "/jobs/{job_id}")
    def job_page(job_id: str, request: Request) -> HTMLResponse:  # the module reads the id from the path
        return console_page(request)

    return routes
