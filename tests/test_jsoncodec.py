"""`jsoncodec` answers what Python's `json` (and `jsonvalues.dumps`) answer, orjson's speed aside:
the same values read from any text, the same errors for what is not JSON, and the same JSON values
written."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gql_jobs import jsoncodec, jsonvalues

#: Integers around and beyond 64 bits, floats of every kind (non-finite too), any text (lone
#: surrogates too), nested in lists and objects.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010))  # surrogates
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=25,
)


def spelt(value: Any) -> str:
    """A value as `json` writes it: tells int from float, -0.0 from 0.0, and NaN equals NaN."""
    return json.dumps(value, sort_keys=True)


def read_both(text: str | bytes) -> tuple[str, str]:
    def read(loads: Any) -> str:
        try:
            return "value " + spelt(loads(text))
        except Exception as exc:  # the same error type, and message
            return f"error {type(exc).__name__}: {exc}"

    return read(json.loads), read(jsoncodec.loads)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.booleans(), st.booleans())
def test_loads_reads_what_json_reads(value: Any, ascii_only: bool, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        encoded: str | bytes = text.encode() if as_bytes else text
    except UnicodeEncodeError:  # a lone surrogate written raw: not UTF-8, only a str can hold it
        encoded = text
    expected, answered = read_both(encoded)
    assert answered == expected


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "-Infinity",
        "1e400",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        '"\\ud800"',
        '{"a": 1, "a": 2}',
        "[1,]",
        "",
        " ",
        "{'a': 1}",
        "[" * 2000 + "]" * 2000,
        "[" * 1100 + "]" * 1100,
        b"\xff\xfe[\x001\x00]\x00",  # UTF-16 with a BOM: json detects it
        b'"\xff"',
        '"digits 12345678901234567890 in a string"',
        "\ufeff[1]",  # a BOM: json refuses it in a str...
        b"\xef\xbb\xbf[1]",  # ...and reads it in bytes
        "\x0c[1]",
        "[1]\x00",
        "[1] x",
        "-0",
        "1E5",
        "0123",
        '"\\u00e9\\uD83D\\uDE00"',
        "\u00e9",
    ],
)
def test_loads_reads_and_refuses_as_json_does(text: str | bytes) -> None:
    expected, answered = read_both(text)
    assert answered == expected


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_dumps_writes_the_json_values_jsonvalues_writes(value: Any) -> None:
    try:
        expected = jsonvalues.dumps(value)
    except Exception as exc:
        with pytest.raises(type(exc)):
            jsoncodec.dumps(value)
        return
    answered = jsoncodec.dumps(value)
    assert spelt(json.loads(answered)) == spelt(json.loads(expected))


def test_dumps_writes_non_finite_numbers_as_null_and_refuses_what_json_refuses() -> None:
    assert json.loads(jsoncodec.dumps({"a": math.nan, "b": [math.inf, -math.inf]})) == {
        "a": None,
        "b": [None, None],
    }
    deep: Any = []
    for _ in range(500):  # deeper than orjson writes: `jsonvalues.dumps` does
        deep = [deep]
    assert jsoncodec.dumps(deep) == jsonvalues.dumps(deep)

    class Thing:
        pass

    assert jsoncodec.dumps({1: "a key json spells"}) == jsonvalues.dumps({1: "a key json spells"})
    for refused in (Thing(), b"bytes", {(1, 2): "a key json refuses"}):
        with pytest.raises(TypeError):
            jsonvalues.dumps(refused)
        with pytest.raises(TypeError):
            jsoncodec.dumps(refused)


def test_dumps_encodes_the_two_things_json_refuses_as_their_values() -> None:
    """orjson encodes a plain enum member and a UUID itself (see `jsoncodec`'s docstring)."""
    import enum
    import uuid

    class Plain(enum.Enum):
        A = "a"

    job = uuid.UUID("12345678-1234-5678-1234-567812345678")
    for value in (Plain.A, job):
        with pytest.raises(TypeError):
            jsonvalues.dumps(value)
    assert json.loads(jsoncodec.dumps({"e": Plain.A, "u": job})) == {"e": "a", "u": str(job)}
