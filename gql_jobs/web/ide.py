"""The browser side: a self-hosted GraphiQL at /graphql and the job console at /console.

Strawberry's own GraphiQL page loads React and GraphiQL from a public CDN, so it renders nothing
offline or behind a strict Content-Security-Policy. Ours loads the same kind of UMD bundles, vendored
in `gql_jobs/web/static/vendor/` by `scripts/vendor-graphiql` (pinned versions, committed output), plus
`static/ide/ide.js`: an explorer plugin, a default document that submits a job and follows it, the
headers editor for the API key, and subscriptions over graphql-transport-ws with the key in
`connection_init`. Both pages only ever talk to their own origin.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.routing import BaseRoute

from gql_jobs.settings import Settings
from gql_jobs.web import console
from gql_jobs.web import docs as docs_page
from gql_jobs.web.static_assets import asset_router, csp, public_path, render_page, root_path, servable

#: GraphiQL needs no eval, no inline script and no inline <style>: the strict policy holds.
GRAPHIQL_CSP = csp()
IDE_FOLDERS = ("vendor", "ide")


def graphiql_page(request: Request) -> HTMLResponse:
    """GraphiQL for the GraphQL endpoint at the request's path (what `render_graphql_ide` returns)."""
    return render_page(request, "graphiql.html", GRAPHIQL_CSP, {"endpoint": public_path(request)})


def console_enabled(settings: Settings) -> bool:
    """On unless a `console` setting says otherwise. Unlike the IDE it stays on in production: it is
    a plain client of the public API, needs no introspection and shows nothing without a valid key."""
    return settings.console


def install(app: FastAPI, settings: Settings, *, docs: bool = False) -> None:
    """Serve the IDE's assets (GraphiQL itself is rendered by the GraphQL router), the console and,
    with `docs`, the REST docs page at /docs."""
    folders: list[str] = []
    if settings.graphiql:
        folders.extend(IDE_FOLDERS)
    if docs:
        folders.extend(docs_page.FOLDERS)
        app.include_router(docs_page.router())
    if console_enabled(settings):
        folders.extend(console.FOLDERS)
        app.include_router(console.router(graphiql=settings.graphiql, docs=docs))
        if not any(_path(route) == "/" for route in app.router.routes):
            app.add_api_route("/", _to_console, include_in_schema=False)
    if folders:
        app.include_router(asset_router(servable(folders)))


def _path(route: BaseRoute) -> str | None:
    return getattr(route, "path", None)


def _to_console(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{root_path(request)}{console.PATH}", status_code=307)
