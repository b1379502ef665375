"""Structured logs, for the API and workers alike, carrying the request id of what they log about.

`REQUEST_ID` holds the id of the HTTP request being handled (set by `gql_jobs.web.requests`), and
every log record written meanwhile carries it. Logs are JSON lines (python-json-logger) unless
`GQL_JOBS_LOG_FORMAT=text`. JSON times are ISO 8601 in UTC with their offset, so lines from machines in
other time zones sort and compare; uvicorn's `color_message` (its message again, with terminal colour
escapes) is left out of them.

Log records carry what clients wrote (a job's description, a request path), so the text format
escapes control characters (`TextFormatter`): one record is one line, and a description holding
"\n2026-01-01 ... ERROR" cannot forge a record. JSON escapes them by itself.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import re
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: Starts every line of a traceback in text logs: no traceback line can pass for a record.
CONTINUATION = "  | "


def escape_controls(text: str) -> str:
    r"""`text` with every control character written as an escape (`\n`, `\x1b`, `\u2028`)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


class TextFormatter(logging.Formatter):
    """The text log format, one line per record: control characters in the message and every other
    field are escaped; a traceback follows on lines of its own, each starting with `CONTINUATION`."""

    def __init__(self, fmt: str = TEXT_FORMAT, *args: Any, **kwargs: Any) -> None:
        super().__init__(fmt, *args, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _continuation(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _continuation(super().formatStack(stack_info))


def _continuation(text: str) -> str:
    return "\n".join(CONTINUATION + escape_controls(line) for line in text.splitlines())


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter with ISO 8601 UTC times (`2026-01-01T12:00:00.123+00:00`)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


#: Record attributes never written as JSON fields: logging's own, and uvicorn's coloured message copy.
JSON_SKIPPED = [*RESERVED_ATTRS, "color_message"]


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for our loggers, uvicorn's and RQ's alike."""
    formatter: dict[str, Any] = (
        {
            "()": JsonFormatter,
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "reserved_attrs": JSON_SKIPPED,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if log_format == "json"
        else {"()": TextFormatter}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}
        },
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


def configure_logging(log_format: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
