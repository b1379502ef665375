"""Documents registered by automatic persisted queries (APQ), shared by every API process.

One string key per document, `gql_jobs:persisted:<sha256 hex>`, always written with a TTL and
given its TTL again when read (`GETEX`), so documents in use stay and the others expire: the keys
are bounded by the TTL times the rate of new documents, each at most `max_document_bytes`.
"""

from __future__ import annotations

from gql_jobs.constants import PERSISTED_QUERY_PREFIX
from gql_jobs.store.connections import AsyncClient


def persisted_key(digest: str) -> str:
    return PERSISTED_QUERY_PREFIX + digest


async def read_document(client: AsyncClient, digest: str, ttl: int) -> str | None:
    """The document registered under `digest`, its TTL renewed; `None` if unknown (or expired)."""
    value = await client.getex(persisted_key(digest), ex=ttl)
    if value is None:
        return None
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else str(value)


async def write_document(client: AsyncClient, digest: str, document: str, ttl: int) -> None:
    await client.set(persisted_key(digest), document.encode("utf-8", "surrogatepass"), ex=ttl)
