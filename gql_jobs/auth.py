"""API keys, principals and scopes.

Keys are random tokens handed to clients; settings keep only their SHA-256 (a key has 256 bits of
entropy, so a fast hash is the right tool: there is nothing to brute-force). `GQL_JOBS_API_KEYS`
maps each hash to the principal (tenant) it stands for and its scopes:

    {"<sha256 hex>": {"principal": "billing", "scopes": ["submit", "read"]}}

With no keys configured the API is open: every caller is the `anonymous` admin (the `dev` default,
warned about at start-up), and jobs have no owner (`owner_of`). The service enforces scopes and
ownership; transports only turn headers into a `Principal` (or refuse a bad key).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from gql_jobs.constants import NAME_PATTERN


class Scope(StrEnum):
    SUBMIT = "submit"  # submit jobs, and cancel/requeue/delete one's own
    READ = "read"  # read one's own jobs
    METRICS = "metrics"  # scrape /metrics (which names every tenant's queues and tasks)
    ADMIN = "admin"  # everything, on every tenant's jobs


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant that owns the jobs it submits."""

    name: str
    scopes: frozenset[Scope]

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def can(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    def owns(self, owner: str | None) -> bool:
        return self.is_admin or owner == self.name


#: The caller when no keys are configured, and the service's own identity for internal reads.
ANONYMOUS = Principal("anonymous", frozenset(Scope))
SYSTEM = Principal("system", frozenset(Scope))
#: Names no key may take: a tenant named so would be taken for the open API or the service.
RESERVED_NAMES = frozenset({ANONYMOUS.name, SYSTEM.name})


def owner_of(submitter: Principal) -> str | None:
    """Who owns the jobs `submitter` submits: its tenant, or nobody when the API is open.

    An open API has no tenants, so an owner would only cost memory: the owner field and an owner
    index entry are ~200 bytes of every job (issue #7). Jobs without an owner are listed and
    shown to admins only, should keys be configured later."""
    return None if submitter == ANONYMOUS else submitter.name


class KeyEntry(BaseModel):
    principal: str = Field(pattern=f"^{NAME_PATTERN}$")  # anchored: pydantic searches, "a/b" matched
    scopes: list[Scope] = Field(min_length=1)

    @field_validator("principal")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            reserved = ", ".join(sorted(RESERVED_NAMES))
            raise ValueError(f"{name!r} is reserved (so are: {reserved}); choose another principal name")
        return name


class InvalidKeyError(Exception):
    """A key was sent but matches no configured key."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The configured keys, by hash."""

    def __init__(self, entries: dict[str, KeyEntry]) -> None:
        self._by_hash = {
            digest.lower(): Principal(entry.principal, frozenset(entry.scopes))
            for digest, entry in entries.items()
        }

    @property
    def is_open(self) -> bool:
        return not self._by_hash

    def principal_for(self, key: str | None) -> Principal | None:
        """The key's principal; `None` when no key was sent. Raises `InvalidKeyError` for a bad one."""
        if self.is_open:
            return ANONYMOUS
        if not key:
            return None
        principal = self._by_hash.get(hash_key(key))
        if principal is None:
            raise InvalidKeyError
        return principal


def key_from_headers(authorization: str | None, api_key: str | None) -> str | None:
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return api_key.strip() if api_key and api_key.strip() else None


def new_key(principal: str, scopes: list[Scope]) -> tuple[str, str]:
    """A fresh key and the JSON line to add to `GQL_JOBS_API_KEYS` for it."""
    entry = KeyEntry(principal=principal, scopes=scopes)
    key = "gqljobs_" + secrets.token_urlsafe(32)
    line = json.dumps({hash_key(key): entry.model_dump(mode="json")})
    return key, line
