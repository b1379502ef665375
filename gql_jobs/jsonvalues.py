"""What JSON can carry: refusing the rest at submission, and answering safely about what is stored.

Python's `json` reads `NaN`, `Infinity` and `1e400` (as infinity) and writes them back as bare
`NaN`/`Infinity`, which no other JSON parser accepts: a job holding one answered REST 500 forever
(Starlette refuses to encode it) and made GraphQL send invalid JSON to whoever listed it. So a
submission is refused with such a number in it (`check`, which also bounds its size and nesting),
and every answer is encoded by `dumps`, which sends a number stored before (by an older version,
or by another RQ client) as `null`, as JavaScript's `JSON.stringify` does. Every walk here is
iterative: depth cannot exhaust the stack.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gql_jobs.errors import FieldError, InvalidPayloadError, PayloadTooLargeError

#: A value's place, as a linked list built while walking (a tuple per node would cost O(depth)).
_Path = tuple["_Path", str | int] | None
_CONTAINERS = (dict, list, tuple)
#: Where `json.dumps` wrote a non-finite number (or a string holding these words: then the walk
#: finds nothing wrong, which is only slower).
_NON_FINITE = re.compile(r"NaN|Infinity")
#: What `check` says of a string with a lone surrogate.
NOT_TEXT = "must be Unicode text (a lone surrogate is not)"


def check(payload: Any, max_depth: int, max_bytes: int | None = None) -> None:
    """Refuse a payload over `max_bytes` of compact JSON, or holding what JSON cannot carry: a
    non-finite number, text that is not Unicode (a lone surrogate, which `\\ud800` decodes to
    and UTF-8 cannot encode), or objects and arrays nested deeper than `max_depth` (the payload
    itself is level 1). A problem comes with the path of the first one found.

    The common case costs C-speed work only: one `json.dumps` (which also bounds the size before
    anything is walked), a regex search of its text, and one comprehension per level of nesting;
    the walk in Python that locates a problem runs only once one is known to be there."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:  # about a thousand levels: too deep for `json` itself
        raise InvalidPayloadError([FieldError((), "is nested too deeply", "too_deep")]) from None
    try:
        size, clean = len(text.encode()), _NON_FINITE.search(text) is None
    except UnicodeEncodeError:
        size, clean = len(text.encode(errors="surrogatepass")), False
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLargeError(max_bytes, size)
    if not clean or not _within(payload, max_depth):
        _locate(payload, max_depth)


def _within(payload: Any, max_depth: int) -> bool:
    """Whether no object or array is nested deeper than `max_depth`, one level at a time."""
    level = [payload] if isinstance(payload, _CONTAINERS) else []
    for _ in range(max_depth):
        if not level:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, _CONTAINERS)
        ]
    return not level


def _locate(payload: Any, max_depth: int) -> None:
    """Raise for the first problem `check` looks for, with its path (visits every value once)."""
    stack: list[tuple[Any, int, _Path]] = [(payload, 1, None)]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise _refused(path, "must be a finite number (JSON has no NaN or Infinity)", "finite_number")
        if isinstance(value, str) and not is_text(value):
            raise _refused(path, NOT_TEXT, "string_unicode")
        if isinstance(value, _CONTAINERS):
            if depth > max_depth:
                raise _refused(path, f"is nested deeper than {max_depth} levels", "too_deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and not is_text(key):
                    raise _refused((path, key), f"key {NOT_TEXT}", "string_unicode")
                stack.append((item, depth + 1, (path, key)))


def is_text(value: str) -> bool:
    """Whether `value` can be sent as UTF-8 (`isascii` is constant-time: most strings cost nothing)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def dumps(data: Any, *, ensure_ascii: bool = True) -> str:
    """Compact JSON any parser reads: non-finite numbers become `null` (looked for only when the
    fast path meets one, so an ordinary answer costs one `json.dumps`)."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=False)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(finite(data), separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=False)


def utf8(data: Any) -> bytes:
    """`dumps` as UTF-8, non-ASCII text as is (as Starlette writes it) unless some text is not
    Unicode (a lone surrogate stored before `check` existed): then escaped, as `\\ud800`."""
    try:
        return dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return dumps(data).encode()


def finite(data: Any) -> Any:
    """A copy of `data` with every non-finite number replaced by `None` (the input is untouched)."""
    root = [data]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        value = container[key]
        if isinstance(value, float) and not math.isfinite(value):
            container[key] = None
        elif isinstance(value, dict):
            copy = dict(value)
            container[key] = copy
            stack.extend((copy, k) for k in copy)
        elif isinstance(value, list | tuple):
            items = list(value)
            container[key] = items
            stack.extend((items, i) for i in range(len(items)))
    return root[0]


def _refused(path: _Path, message: str, kind: str) -> InvalidPayloadError:
    keys: list[str | int] = []
    while path is not None:
        path, key = path
        keys.append(key)
    return InvalidPayloadError([FieldError(tuple(reversed(keys)), message, kind)])
