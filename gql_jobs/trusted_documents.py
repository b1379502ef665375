"""Manifests of trusted GraphQL documents, as frontend builds generate them.

A manifest maps each document's SHA-256 (hex) to its text. Two formats are read:

- Apollo's persisted-query manifest (`@apollo/generate-persisted-query-manifest`):
  `{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [...]}`, each
  operation `{"id", "body", "name", "type"}` (or `operations` an object of them by id);
- a plain map `{"<sha256 hex>": "<document>"}` (graphql-codegen's `persistedDocuments`, Relay's
  `persistConfig` with `"algorithm": "SHA256"`).

Each id must be the SHA-256 of its body: a manifest that says otherwise was built from other
documents, and is refused at start-up (`Settings.persisted_documents`) rather than answering
wrong documents later.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

#: Apollo's manifest's `format`.
APOLLO_FORMAT = "apollo-persisted-query-manifest"
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class ManifestError(ValueError):
    """The manifest cannot be used; the message says why in one line."""


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """The documents of the manifest at `path`, by lower-case SHA-256 hex digest."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is not JSON: {exc}") from None
    return _checked(_entries(raw))


def _entries(raw: object) -> list[tuple[object, object]]:
    if isinstance(raw, dict) and raw.get("format") == APOLLO_FORMAT:
        if raw.get("version") != 1:
            raise ManifestError(f"unsupported {APOLLO_FORMAT} version {raw.get('version')!r} (1 is read)")
        operations = raw.get("operations")
        if isinstance(operations, dict):  # keyed by id, as some codegen plugins write it
            operations = [{**op, "id": key} if isinstance(op, dict) else op for key, op in operations.items()]
        if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
            raise ManifestError("`operations` must be a list of {id, body, name, type} objects")
        return [(op.get("id"), op.get("body")) for op in operations]
    if isinstance(raw, dict) and "format" not in raw:
        return list(raw.items())
    raise ManifestError(
        f'expected {{"format": "{APOLLO_FORMAT}", ...}} or a {{"<sha256 hex>": "<document>"}} map'
    )


def _checked(entries: list[tuple[object, object]]) -> dict[str, str]:
    documents: dict[str, str] = {}
    for digest, body in entries:
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise ManifestError(f"{str(digest)[:80]!r} is not a SHA-256 hex digest")
        if not isinstance(body, str):
            raise ManifestError(f"the document of {digest} is not a string")
        if sha256_hex(body) != digest.lower():
            raise ManifestError(f"{digest} is not the SHA-256 of its document (it is {sha256_hex(body)})")
        documents[digest.lower()] = body
    return documents
