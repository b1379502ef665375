"""The REST docs at /docs: Swagger UI served from `static/vendor-docs/`, not from a CDN.

FastAPI's own `/docs` page loads Swagger UI from jsDelivr and starts it with an inline script, so it
renders nothing offline or under a strict Content-Security-Policy. This page loads the vendored
bundle (`scripts/vendor-graphiql`) and `static/docs/docs.js`, which starts it on `/openapi.json`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gql_jobs.web.static_assets import csp, render_page, root_path

PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
FOLDERS = ("vendor-docs", "docs")
#: The strict policy holds: Swagger UI's React sets styles through the CSSOM, not `style` attributes.
DOCS_CSP = csp()


def router() -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get(PATH)
    def docs_page(request: Request) -> HTMLResponse:
        return render_page(request, "docs.html", DOCS_CSP, {"openapi": root_path(request) + OPENAPI_PATH})

    return routes
