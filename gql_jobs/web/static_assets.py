"""Files shipped in `web/static/`, served same-origin at `/static/...`, and the HTML pages using them.

Asset URLs carry a content hash (`?v=<sha256 prefix>`): such a request is cached for a year
(`immutable`), so a new release can never be served stale. Bodies are read and gzipped once per
process. Only the folders an app enables are served (the IDE's assets vanish with
`GQL_JOBS_GRAPHIQL=false`), and only known file types, so nothing else in the package leaks.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
URL_PREFIX = "/static"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MIN_GZIP_BYTES = 1024
_PLACEHOLDER = re.compile(r"\{\{\s*(static:)?([A-Za-z0-9_./-]+)\s*\}\}")


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    version: str
    media_type: str


@cache
def load_asset(relative: str) -> Asset:
    """The file at `static/<relative>`, read, hashed and compressed once per process."""
    path = STATIC_DIR / relative
    body = path.read_bytes()
    gzipped = gzip.compress(body, 9, mtime=0) if len(body) >= MIN_GZIP_BYTES else None
    return Asset(
        body=body,
        gzipped=gzipped if gzipped is not None and len(gzipped) < len(body) else None,
        version=hashlib.sha256(body).hexdigest()[:16],
        media_type=MEDIA_TYPES[path.suffix],
    )


def servable(folders: Iterable[str]) -> frozenset[str]:
    """Relative paths of the files under the given folders of `static/` that may be served."""
    found: set[str] = set()
    for folder in folders:
        root = STATIC_DIR / folder
        found.update(
            p.relative_to(STATIC_DIR).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.suffix in MEDIA_TYPES
        )
    return frozenset(found)


def root_path(request: Request) -> str:
    """The prefix a proxy mounts the app under (`--root-path`), or ""."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def public_path(request: Request) -> str:
    """The request's path as the browser sees it, root path included. (ASGI servers disagree on
    whether `scope["path"]` already starts with the root path.)"""
    root, path = root_path(request), str(request.scope["path"])
    return path if root and (path == root or path.startswith(root + "/")) else root + path


def asset_url(request: Request, relative: str) -> str:
    """Same-origin, content-addressed URL of an asset (respects a proxy's root path)."""
    return f"{root_path(request)}{URL_PREFIX}/{relative}?v={load_asset(relative).version}"


def asset_router(files: frozenset[str]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.api_route(URL_PREFIX + "/{relative:path}", methods=["GET", "HEAD"])
    def static_file(relative: str, request: Request) -> Response:
        clean = PurePosixPath(relative).as_posix()
        if clean not in files:
            return Response("Not Found", status_code=404, media_type="text/plain")
        asset = load_asset(clean)
        etag = f'"{asset.version}"'
        headers = {
            "ETag": etag,
            "Cache-Control": IMMUTABLE if request.query_params.get("v") == asset.version else REVALIDATE,
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)

    return router


@cache
def _template(name: str) -> str:
    return (TEMPLATES_DIR / name).read_text(encoding="utf-8")


def render_page(request: Request, template: str, csp: str, values: Mapping[str, str]) -> HTMLResponse:
    """A page from `templates/`: `{{ static:path }}` becomes an asset URL, `{{ name }}` an escaped value."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return html.escape(asset_url(request, match.group(2)))
        return html.escape(values[match.group(2)])

    return HTMLResponse(_PLACEHOLDER.sub(substitute, _template(template)), headers=page_headers(csp))


def page_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": REVALIDATE,
    }


def csp(**directives: str) -> str:
    """A Content-Security-Policy denying everything but same-origin scripts, styles, fetches and
    WebSockets (`'self'` covers ws:/wss: to the same host in CSP 3 browsers), plus `directives`."""
    policy = {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    policy.update({name.replace("_", "-"): value for name, value in directives.items()})
    return "; ".join(f"{name} {value}" for name, value in policy.items())
