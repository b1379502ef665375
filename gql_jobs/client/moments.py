"""Moments as people type them for `--since`/`--until` (and the client's `submitted_after`/
`submitted_before`): ISO 8601 (a naive one is taken as UTC, as the server wants a time zone), or a
span back from now such as `90s`, `15m`, `1h`, `2d`, `1w`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_moment(value: datetime | str, *, now: datetime | None = None) -> datetime:
    """The moment `value` names, with a time zone; raises ValueError saying what is accepted."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    span = _SPAN.match(value)
    if span:
        seconds = float(span.group(1)) * _UNIT_SECONDS[span.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is not a moment: give ISO 8601 (2026-01-31T12:00:00Z) or a span back from now "
            "(30s, 15m, 1h, 2d, 1w)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
