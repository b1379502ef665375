"""JSON at orjson's speed, answering exactly what Python's `json` answers.

Decoding a job's meta with `json.loads` was a quarter of building its record, and encoding a page
of 50 jobs a few per cent of the page (issue #20); orjson does both about five times faster.
It differs from `json` in a few places, each handled here so that callers see `json`'s answers:

- An integer beyond 64 bits: orjson reads it as a float (silently losing digits), `json` as an
  int. A text holding a run of 19 digits or more (within a string too) is read by `json`.
- What orjson refuses to read (`NaN`, `Infinity`, `1e400`, a lone surrogate such as `\\ud800`,
  nesting deeper than 1,024, bytes that are not UTF-8) is read by `json`, which reads some of
  it and raises for the rest exactly as before.
- Encoding, orjson refuses integers beyond 64 bits, lone surrogates and nesting deeper than 254:
  those answers are encoded by `jsonvalues.dumps`, as before. orjson writes non-finite numbers
  as null, as `jsonvalues.dumps` does, non-ASCII text as UTF-8 (not `\\u` escapes) and some
  floats differently spelt (`1e-7`, not `1e-07`): the same JSON values, other bytes. Hence GraphQL
  answers only; the REST routes keep the tutorial's bytes (`jsonvalues.utf8`). What `json`
  cannot encode (a datetime, a dataclass) and subclasses of str and int are passed through by
  orjson and encoded, or refused, by `jsonvalues.dumps` as before. Two things `json` refuses
  orjson encodes itself: a plain `Enum` member (as its value) and a `UUID` (as its text). A
  GraphQL answer holds neither (its scalars have coerced every value; a `JSON` value was read
  from JSON), so no answer sent before is sent differently; such a value, were a bug to put it
  there, would now be encoded instead of failing the answer.

`tests/test_jsoncodec.py` holds both functions to `json`'s answers on generated values.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from gql_jobs import jsonvalues

#: Leave to `json` what it would refuse or spell in its own way (see the module's docstring).
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS

#: Every byte of a text, digits as `0` and the rest as `x`: a run of 19 digits (an integer orjson may
#: read as a float) is then found by `in`, ten times faster than a regex search.
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord("x") for i in range(256))
_LONG_RUN = b"0" * 19


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`: the same value, or the same exception (see the module's docstring)."""
    try:
        raw = data.encode() if isinstance(data, str) else data
    except UnicodeEncodeError:  # a lone surrogate in the text itself: not UTF-8, `json` reads it
        return json.loads(data)
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # `json` reads it, or raises its own error
    return json.loads(data)


def dumps(data: Any) -> str:
    """`jsonvalues.dumps(data)`'s JSON value (compact; a non-finite number as null), its text as
    orjson writes it where orjson can."""
    return dumps_utf8(data).decode()


def dumps_utf8(data: Any) -> bytes:
    """`dumps(data)` in UTF-8, as sent: orjson's bytes as they are, not decoded to be encoded again."""
    try:
        return orjson.dumps(data, option=_STRICT)
    except TypeError:  # orjson.JSONEncodeError: a big integer, a lone surrogate, deep nesting...
        return jsonvalues.dumps(data).encode()
