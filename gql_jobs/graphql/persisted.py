"""Documents sent by hash: automatic persisted queries, and trusted documents from a manifest.

Two ways a client names a document by its SHA-256 instead of sending it:

- **Automatic persisted queries** (Apollo's APQ, `persisted_queries`): the client sends
  `extensions: {persistedQuery: {version: 1, sha256Hash}}` without `query`; unknown, it is answered
  `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`), on which Apollo's link (and urql's
  `persistedExchange`) sends the document with its hash. Its hash checked, the document runs, and
  one that ran (it was valid), sent by a caller with a valid key, is kept in Redis for every API
  process (`service.persisted`), for `persisted_query_ttl` after its last use. Registering needs a
  key and a valid document, so what Redis holds is bounded by the TTL times the rate at which
  callers with keys make up valid documents, each at most `max_document_bytes`.
- **Trusted documents** (`persisted_documents`, a manifest the frontend's build generates; see
  `gql_jobs.trusted_documents`): found by hash in memory, no Redis. The hash comes as APQ's
  `sha256Hash` or as `documentId` (`sha256:<hex>`, the GraphQL-over-HTTP persisted-documents
  proposal). With `only_persisted_documents`, the manifest's documents are the only ones that run:
  any other text is refused before it is parsed (`PERSISTED_DOCUMENT_REQUIRED`, checked in
  `schema.GuardedSchema` for every transport, WebSockets included), and APQ registers nothing.
  Callers with an admin key are exempt, so that operators keep GraphiQL and the console (the
  open API's `anonymous` admin is not: it is everyone).

Every refusal here is a request error with `extensions.code`: over `application/json` a 200 with
`data: null`, over `application/graphql-response+json` a 400 without `data` (`router`). Apollo
Client reads both (it parses a 4xx body for these codes), so it falls back to the full document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from graphql import GraphQLError

from gql_jobs.auth import ANONYMOUS, Principal
from gql_jobs.errors import ErrorCode, ServiceUnavailableError
from gql_jobs.graphql.documents import utf8_size
from gql_jobs.service.persisted import PersistedQueries
from gql_jobs.settings import Settings
from gql_jobs.trusted_documents import SHA256_HEX, load_manifest, sha256_hex

#: Apollo's link matches these messages as well as the codes.
NOT_FOUND = "PersistedQueryNotFound"
NOT_SUPPORTED = "PersistedQueryNotSupported"
#: `documentId` as the GraphQL-over-HTTP persisted-documents proposal spells it (or bare hex).
DOCUMENT_ID = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
BAD_PERSISTED_QUERY = (
    "`extensions.persistedQuery` must be {version: 1, sha256Hash: <SHA-256 of the document, 64 hex digits>}"
)
BAD_DOCUMENT_ID = "`documentId` must be sha256:<SHA-256 of the document, 64 hex digits>"
DOCUMENT_REQUIRED = (
    "This server runs only its trusted documents: send the document's hash (Apollo's persisted "
    "queries, or documentId), or a document of its manifest"
)


@dataclass(frozen=True)
class Resolved:
    """What a request names: the document to run, and the digest to register it under once it
    ran (automatic persisted queries), or the error that answers it."""

    query: str | None
    register: str | None = None
    error: GraphQLError | None = None


class PersistedDocuments:
    """The trusted documents of the manifest, and whether APQ registers and finds documents."""

    def __init__(self, settings: Settings) -> None:
        path = settings.persisted_documents
        self.trusted: dict[str, str] = load_manifest(path) if path is not None else {}
        self.bodies = frozenset(self.trusted.values())
        self.longest = max(map(len, self.bodies), default=0)
        self.only = settings.only_persisted_documents
        #: APQ: off when only trusted documents run (nothing is registered, nothing else is found).
        self.automatic = settings.persisted_queries and not self.only
        self.max_document_bytes = settings.max_document_bytes

    @property
    def supported(self) -> bool:
        return self.automatic or bool(self.trusted)

    def refusal(self, query: str, caller: object) -> GraphQLError | None:
        """Why `query` may not run, before anything parses it: only trusted documents run, and it
        is none of them (a text longer than every one of them is not even hashed)."""
        if not self.only or _is_admin(caller):
            return None
        if len(query) <= self.longest and query in self.bodies:
            return None
        return _error(DOCUMENT_REQUIRED, ErrorCode.PERSISTED_DOCUMENT_REQUIRED)

    async def resolve(
        self,
        query: str | None,
        extensions: dict[str, object] | None,
        document_id: object,
        store: PersistedQueries,
    ) -> Resolved:
        """The document a request names, by text or by hash."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None and document_id is None:
            return Resolved(query)
        if not self.supported:  # a document sent in full runs as any other
            if query is not None:
                return Resolved(query)
            return Resolved(None, error=_error(NOT_SUPPORTED, ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED))
        digest = _digest(persisted) if document_id is None else _document_id(document_id)
        if digest is None:
            message = BAD_PERSISTED_QUERY if document_id is None else BAD_DOCUMENT_ID
            return Resolved(None, error=_error(message, ErrorCode.BAD_REQUEST))
        if query is not None:
            return self._sent_in_full(query, digest)
        return await self._by_hash(digest, store)

    def _sent_in_full(self, query: str, digest: str) -> Resolved:
        """A document with its hash: checked, and registered once it ran (APQ's second request)."""
        if utf8_size(query, self.max_document_bytes) > self.max_document_bytes:
            return Resolved(query)  # refused as too large by the document checks, never hashed
        if sha256_hex(query) != digest:
            message = "The document's SHA-256 is not the `sha256Hash` sent with it"
            return Resolved(None, error=_error(message, ErrorCode.PERSISTED_QUERY_HASH_MISMATCH))
        register = digest if self.automatic and digest not in self.trusted else None
        return Resolved(query, register=register)

    async def _by_hash(self, digest: str, store: PersistedQueries) -> Resolved:
        document = self.trusted.get(digest)
        if document is None and self.automatic:
            try:
                document = await store.lookup(digest)
            except ServiceUnavailableError as exc:
                return Resolved(None, error=_error(exc.message, ErrorCode.SERVICE_UNAVAILABLE))
        if document is None:
            return Resolved(None, error=_error(NOT_FOUND, ErrorCode.PERSISTED_QUERY_NOT_FOUND))
        return Resolved(document)

    async def register(
        self, digest: str, query: str, caller: Principal | None, store: PersistedQueries
    ) -> None:
        """Keep a document that ran, for callers with a valid key; Redis failing loses only the
        shortcut (the client sends the document again), never the answer."""
        if caller is None:
            return
        try:
            await store.register(digest, query)
        except ServiceUnavailableError:
            return


def _is_admin(caller: object) -> bool:
    return isinstance(caller, Principal) and caller.is_admin and caller != ANONYMOUS


def _digest(persisted: object) -> str | None:
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        return None
    digest = persisted.get("sha256Hash")
    return digest.lower() if isinstance(digest, str) and SHA256_HEX.fullmatch(digest) else None


def _document_id(document_id: object) -> str | None:
    matched = DOCUMENT_ID.fullmatch(document_id) if isinstance(document_id, str) else None
    return matched.group(1).lower() if matched else None


def _error(message: str, code: ErrorCode) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code.value})
