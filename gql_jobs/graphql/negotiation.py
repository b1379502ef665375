"""Content negotiation of /graphql over HTTP, by the client's preferences (GraphQL over HTTP spec).

Two questions, both answered from `Accept` by q-value first, then by the order the client listed
its media ranges in:

- which JSON to answer with: `application/graphql-response+json` (the spec's, whose status codes
  tell request errors apart) when the client asks for it at least as much as `application/json`;
  `application/json` without an `Accept` header, for `*/*` alone, or when nothing we serve is
  acceptable (the spec allows answering JSON then, rather than 406);
- whether to stream Server-Sent Events: only when `text/event-stream` is preferred to every JSON
  type. urql sends `application/graphql-response+json, application/json, text/event-stream` on
  every request; Strawberry answers SSE whenever `text/event-stream` appears anywhere, which urql
  cannot read (urql#3673).

And a third, for `@defer` and `@stream` (`incremental.py`): whether the client reads an answer in
parts at all (`accepts_parts`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
EVENT_STREAM = "text/event-stream"
MULTIPART_MIXED = "multipart/mixed"
JSON_TYPES = (GRAPHQL_RESPONSE_JSON, APPLICATION_JSON)
#: Verdicts cached by `Accept` value (clients send very few distinct ones), for values up to
#: `CACHED_ACCEPT_CHARS` long: at most ~64 kB however many distinct values clients make up.
CACHED_ACCEPTS = 256
CACHED_ACCEPT_CHARS = 256
#: Media ranges read from one `Accept` header; a longer header is read up to there.
MAX_RANGES = 32


@dataclass(frozen=True)
class Preference:
    """How much the client wants a media type: its q-value, how exactly a range named it (2 by
    name, 1 `type/*`, 0 `*/*`) and that range's position (earlier wins a tie)."""

    q: float
    exact: int
    position: int

    def beats(self, other: Preference) -> bool:
        return (self.q, -self.position) > (other.q, -other.position)


UNWANTED = Preference(0.0, -1, MAX_RANGES)


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    def precision(self, media_type: str) -> int:
        """2 when this range names `media_type`, 1 or 0 for wildcards, -1 when it does not match."""
        kind, _, sub = media_type.partition("/")
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def parse_accept(header: str) -> tuple[MediaRange, ...]:
    ranges = []
    for part in header.split(",")[:MAX_RANGES]:
        media, *params = (piece.strip() for piece in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        ranges.append(MediaRange(kind, sub, _q(params)))
    return tuple(ranges)


def _q(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def preference(ranges: tuple[MediaRange, ...], media_type: str, *, wildcards: bool = True) -> Preference:
    """The most specific range matching `media_type` decides (RFC 9110, 12.5.1)."""
    best: Preference = UNWANTED
    for position, media_range in enumerate(ranges):
        exact = media_range.precision(media_type)
        if exact > best.exact and (wildcards or exact == 2):
            best = Preference(media_range.q, exact, position)
    return best if best.q > 0 else UNWANTED


def _negotiate(header: str) -> tuple[str, bool]:
    return _cached(header) if len(header) <= CACHED_ACCEPT_CHARS else _verdict(header)


def _verdict(header: str) -> tuple[str, bool]:
    """The JSON type to answer with, and whether to stream events instead."""
    ranges = parse_accept(header)
    spec, legacy = (preference(ranges, media_type) for media_type in JSON_TYPES)
    # `*/*` alone (curl, many libraries) is a legacy client: it did not ask for the spec's type.
    chosen = GRAPHQL_RESPONSE_JSON if spec.exact == 2 and not legacy.beats(spec) else APPLICATION_JSON
    stream = preference(ranges, EVENT_STREAM, wildcards=False)
    json_best = spec if spec.beats(legacy) else legacy
    return chosen, stream.q > 0 and stream.beats(json_best)


def response_media_type(accept: str | None) -> str:
    """The JSON type to answer a request with `accept`."""
    return _negotiate(accept)[0] if accept else APPLICATION_JSON


def prefers_event_stream(accept: str | None) -> bool:
    """Whether the client prefers an event stream to every JSON type we serve."""
    return _negotiate(accept)[1] if accept else False


def accepts_parts(accept: str | None) -> bool:
    """Whether the client reads an answer in several parts (`@defer`, `@stream`): it names
    `multipart/mixed` (Apollo Client 4, urql), or prefers an event stream. Wildcards do not count:
    `*/*` (curl) expects one JSON document."""
    if not accept:
        return False
    return _cached_parts(accept) if len(accept) <= CACHED_ACCEPT_CHARS else _reads_parts(accept)


def _reads_parts(header: str) -> bool:
    multipart = preference(parse_accept(header), MULTIPART_MIXED, wildcards=False)
    return multipart.q > 0 or prefers_event_stream(header)


_cached = functools.lru_cache(maxsize=CACHED_ACCEPTS)(_verdict)
_cached_parts = functools.lru_cache(maxsize=CACHED_ACCEPTS)(_reads_parts)
