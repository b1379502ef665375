"""Keys and clients for the auth tests: two tenants, an admin, and keys with partial scopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from gql_jobs.auth import KeyEntry, Scope, hash_key

KEYS: dict[str, tuple[str, list[Scope]]] = {
    "key-alice": ("alice", [Scope.SUBMIT, Scope.READ]),
    "key-bob": ("bob", [Scope.SUBMIT, Scope.READ]),
    "key-root": ("ops", [Scope.ADMIN]),
    "key-alice-reader": ("alice", [Scope.READ]),
    "key-alice-submitter": ("alice", [Scope.SUBMIT]),
    "key-scraper": ("prometheus", [Scope.METRICS]),
}


def api_keys_setting() -> dict[str, KeyEntry]:
    return {hash_key(key): KeyEntry(principal=name, scopes=scopes) for key, (name, scopes) in KEYS.items()}


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class Caller:
    """One client of the API, speaking both transports with its key."""

    client: TestClient
    key: str | None

    def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=bearer(self.key)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def submit(self, task: str = "echo", payload: dict[str, Any] | None = None, **options: Any) -> str:
        body = self.gql(SUBMIT, input={"task": task, "payload": payload or {}, **options})
        result = body["data"]["submitJob"]
        assert result["__typename"] == "SubmitJobSuccess", result
        return str(result["job"]["id"])


SUBMIT = """mutation ($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobSuccess { deduplicated job { id status } }
    ... on Error { message }
    ... on UnauthorizedError { requiredScope }
    ... on RateLimitedError { retryAfterSeconds }
  }
}"""
