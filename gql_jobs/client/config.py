"""Where the client connects and how patiently: arguments first, then environment variables.

| argument    | environment variable  | default                 |
|-------------|-----------------------|-------------------------|
| url         | GQL_JOBS_URL          | http://127.0.0.1:8000   |
| api_key     | GQL_JOBS_API_KEY      | none (an open API)      |
| timeout     | GQL_JOBS_TIMEOUT      | 30 seconds per request  |
| retries     | GQL_JOBS_RETRIES      | 3                       |

Read here, not by the server's settings: a client machine has none of the server's configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gql_jobs.constants import CLIENT_DEFAULT_RETRIES as DEFAULT_RETRIES
from gql_jobs.constants import CLIENT_DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from gql_jobs.constants import CLIENT_DEFAULT_URL as DEFAULT_URL

#: The first backoff (doubled at each retry) and the longest wait between two attempts.
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class ClientConfig:
    url: str
    api_key: str | None
    timeout: float
    retries: int
    backoff: float = DEFAULT_BACKOFF
    max_backoff: float = MAX_BACKOFF

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> ClientConfig:
        """Each value from its argument, else its environment variable, else its default."""
        env = os.environ
        return cls(
            url=(url or env.get("GQL_JOBS_URL") or DEFAULT_URL).rstrip("/"),
            api_key=api_key or env.get("GQL_JOBS_API_KEY") or None,
            timeout=timeout if timeout is not None else _number(env, "GQL_JOBS_TIMEOUT", DEFAULT_TIMEOUT),
            retries=retries
            if retries is not None
            else int(_number(env, "GQL_JOBS_RETRIES", DEFAULT_RETRIES)),
            backoff=backoff if backoff is not None else DEFAULT_BACKOFF,
        )

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    @property
    def ws_url(self) -> str:
        scheme, _, rest = self.graphql_url.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _number(env: os._Environ[str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _count(env: os._Environ[str]) -> int:
    return int(_number(env, "GQL_JOBS_RETRIES", DEFAULT_RETRIES))
