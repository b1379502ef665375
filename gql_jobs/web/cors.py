"""Which other origins' pages may call the API: CORS for HTTP, and the same list for WebSockets.

One policy (`Settings.cors_origins`, plus any `http://localhost:<port>` / `http://127.0.0.1:<port>`
origin when `cors_localhost` is on, as under `gql-jobs dev`) answers both questions: Starlette's
`CORSMiddleware` applies it to REST and /graphql (preflights answered, the headers our clients
send allowed, `X-Request-ID` and `Retry-After` exposed), and `graphql.router` applies it to
WebSocket handshakes, which browsers send cross-origin without any CORS check. With neither set,
no middleware is installed: same origin only, as before.

No credentials (cookies) are ever allowed: API keys travel in headers, so a page on another
origin can act only with a key it was given, and `*` is safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from gql_jobs.settings import Settings

#: Request headers a cross-origin page may send (besides CORS's safelisted ones).
ALLOWED_HEADERS = ("Authorization", "X-API-Key", "Idempotency-Key", "Content-Type", "X-Request-ID")
#: Response headers a cross-origin page may read.
EXPOSED_HEADERS = ("X-Request-ID", "Retry-After")
#: Every method a route of ours answers (REST and GraphQL alike).
ALLOWED_METHODS = ("GET", "POST")
#: Seconds a browser may cache a preflight's answer (Chromium caps it at 7200).
MAX_AGE = 600
#: What `cors_localhost` allows: a dev server on this machine, any port.
LOCALHOST_PATTERN = r"http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"


@dataclass(frozen=True)
class OriginPolicy:
    origins: frozenset[str]
    pattern: str | None

    @classmethod
    def of(cls, settings: Settings) -> OriginPolicy:
        return cls(frozenset(settings.cors_origins), LOCALHOST_PATTERN if settings.cors_localhost else None)

    @property
    def enabled(self) -> bool:
        return bool(self.origins) or self.pattern is not None

    def allows(self, origin: str) -> bool:
        """What `CORSMiddleware` decides for `origin` (exact match, `*`, or the pattern)."""
        if "*" in self.origins or origin in self.origins:
            return True
        return self.pattern is not None and re.fullmatch(self.pattern, origin) is not None


def install(app: FastAPI, settings: Settings) -> None:
    """Answer CORS for every route, when any other origin is allowed."""
    policy = OriginPolicy.of(settings)
    if not policy.enabled:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(policy.origins),
        allow_origin_regex=policy.pattern,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=MAX_AGE,
    )
