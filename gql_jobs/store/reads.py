"""Consistent reads of RQ jobs: one MULTI/EXEC per batch, turned into `JobRecord`s.

The lesson's status route read a job field by field (`get_status()`, then `result`, ...) and could
answer `finished` with `ended_at: null`, because the worker's writes landed between two reads. We
read each job's hash and its latest result in one transaction, so a record is always one moment
of the job.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from json.decoder import scanstring  # type: ignore[attr-defined]  # public since 2.6, untyped
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq.job import Job
from rq.results import Result
from rq.utils import parse_timeout

from gql_jobs import jsoncodec
from gql_jobs.constants import (
    META_PAYLOAD,
    META_PROGRESS,
    META_SUBMITTED_AT,
    META_TAGS,
    META_TASK,
    OWNER_FIELD,
)
from gql_jobs.domain import JobError, JobRecord, JobStatus, Progress, RecordFields
from gql_jobs.store import rq_adapter
from gql_jobs.store.keys import job_key, results_key
from gql_jobs.store.rq_format import parse_time


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


#: KEYS: each job's hash and results stream, in pairs. Replies, per job, its hash as a flat list
#: and its latest result entry: one command, atomic like the MULTI/EXEC it replaces, whose 2n
#: queued commands cost the client more (packing, `QUEUED` replies, per-command callbacks) than
#: Redis's work (issue #20).
READ_SCRIPT = """
local out = {}
for i = 1, #KEYS, 2 do
  out[i] = redis.call('HGETALL', KEYS[i])
  out[i + 1] = redis.call('XREVRANGE', KEYS[i + 1], '+', '-', 'COUNT', 1)
end
return out
"""


#: The hash fields holding each field a summary may hold (each of `domain.SUMMARY_FIELDS`, as
#: `tests/store/test_reads.py` checks): all that `to_record` reads but `data` (the task's
#: arguments, compressed) and `exc_info` (the traceback), which only `payload`, `result` and
#: `error` need.
_HASH_FIELDS_OF: dict[str, tuple[str, ...]] = {
    "id": (),
    "status": ("status",),
    "raw_status": ("status",),
    "task": ("meta",),
    "queue": ("origin",),
    "payload": ("meta",),
    "meta": ("meta",),
    "tags": ("meta",),
    "description": ("description",),
    "submitted_at": ("meta",),
    "created_at": ("created_at",),
    "enqueued_at": ("enqueued_at",),
    "started_at": ("started_at",),
    "ended_at": ("ended_at",),
    "progress": ("meta",),
    "retries_left": ("retries_left",),
    "depends_on": ("dependency_ids", "dependency_id"),
    "timeout": ("timeout",),
    "result_ttl": ("result_ttl",),
    "failure_ttl": ("failure_ttl",),
    "worker_name": ("worker_name",),
    "result_expires_at": ("status", "ended_at", "result_ttl", "failure_ttl"),
    "owner": (OWNER_FIELD,),
    "summary": (),
}

#: What a listing reads of every job, whatever the reader asked for: its filters (status, task,
#: tags, queue), a tenant's ownership and the order of a page of ids (creation).
_ALWAYS = ("status", "meta", "origin", OWNER_FIELD, "created_at")


@functools.lru_cache(maxsize=256)  # one per distinct selection of a page's jobs: a few per app
def summary_hash_fields(fields: RecordFields) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    """The hash fields a summary holding `fields` reads (`KeyError` for a field no summary holds),
    as ARGV of `SUMMARY_SCRIPT` and as the reply's keys."""
    held = (_HASH_FIELDS_OF[name] for name in sorted(fields))
    names = tuple(dict.fromkeys(itertools.chain(_ALWAYS, *held)))
    return names, tuple(name.encode() for name in names)


#: KEYS: each job's hash; ARGV: the hash fields to read (`summary_hash_fields`). Replies, per
#: job, the fields' values (nil where unset), or an empty list for a job that does not exist (a
#: hash without `data` is one: what `to_record` says of a full read). No results stream.
SUMMARY_SCRIPT = """
local out = {}
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], 'data') == 1 then
    out[i] = redis.call('HMGET', KEYS[i], unpack(ARGV))
  else
    out[i] = {}
  end
end
return out
"""


async def read_jobs(
    connection: AsyncRedis, job_ids: Sequence[str], summary: RecordFields | None = None
) -> list[JobRecord | None]:
    """Read many jobs in one round trip, on the event loop; `None` where a job does not exist (or
    has expired). A `summary` (the record fields wanted) leaves out what costs most to read and
    decode, the task's arguments and the job's outcome (see `JobRecord.summary`), and reads only
    the hash fields those fields need: a page of 50 that shows `id status task` reads five."""
    if not job_ids:
        return []
    if summary is not None:
        names, keys = summary_hash_fields(summary)
        values = await connection.eval(SUMMARY_SCRIPT, len(job_ids), *map(job_key, job_ids), *names)
        return to_summaries(job_ids, values, keys)
    replies = await connection.eval(READ_SCRIPT, 2 * len(job_ids), *_keys(job_ids))
    return to_records(job_ids, replies)


def read_jobs_on_thread(connection: Redis, job_ids: Sequence[str]) -> list[JobRecord | None]:
    """`read_jobs` for store code already running on a store thread (the idempotency check inside
    its WATCH), which cannot await: the same script and parsing."""
    if not job_ids:
        return []
    replies: list[Any] = connection.eval(READ_SCRIPT, 2 * len(job_ids), *_keys(job_ids))
    return to_records(job_ids, replies)


def _keys(job_ids: Sequence[str]) -> list[str]:
    keys: list[str] = []
    for job_id in job_ids:
        keys += (job_key(job_id), results_key(job_id))
    return keys


def to_records(job_ids: Sequence[str], replies: list[Any]) -> list[JobRecord | None]:
    """Records from `READ_SCRIPT`'s replies (flat hashes, raw stream entries)."""
    records: list[JobRecord | None] = []
    for i, job_id in enumerate(job_ids):
        flat = replies[2 * i]
        pairs = iter(flat)
        results = [
            (entry_id, dict(zip(fields[::2], fields[1::2], strict=True)))
            for entry_id, fields in replies[2 * i + 1]
        ]
        records.append(to_record(job_id, dict(zip(pairs, pairs, strict=True)), results))
    return records


def to_summaries(
    job_ids: Sequence[str], replies: list[Any], names: tuple[bytes, ...]
) -> list[JobRecord | None]:
    """Summaries from `SUMMARY_SCRIPT`'s replies (each job's values of the hash fields `names`)."""
    pairs = zip(job_ids, replies, strict=True)
    return [_to_summary(job_id, values, names) if values else None for job_id, values in pairs]


def _to_summary(job_id: str, values: list[bytes | None], names: tuple[bytes, ...]) -> JobRecord | None:
    raw_hash = {name: value for name, value in zip(names, values, strict=True) if value is not None}
    return to_record(job_id, raw_hash, [], summary=True)


def to_record(
    job_id: str, raw_hash: dict[bytes, bytes], raw_results: list[Any], summary: bool = False
) -> JobRecord | None:
    """The record of one job from its raw hash and latest result entry.

    Decoded field by field as RQ encodes them (`rq_format.parse_time`, JSON meta, zlib-compressed
    data and tracebacks), without building RQ's `Job` and `Result`: `Job.restore` parsed every
    field of every job of a page (dates with `strptime`, webhooks, callbacks...) and was 40% of a
    page's CPU (issue #20). `tests/store/test_reads.py` holds this to what RQ's own objects read.
    A `summary` comes from the hash fields `summary_hash_fields` names (the job is known to
    exist): a field not read is None, as an unset one is."""
    if not raw_hash or (b"data" not in raw_hash and not summary):
        return None
    get = raw_hash.get
    raw_status = (get(b"status") or b"").decode()
    status = _STATUSES.get(raw_status) or JobStatus.parse(raw_status)
    meta = _meta(get(b"meta"))
    has_payload = META_PAYLOAD in meta
    data = None if summary else _data(raw_hash[b"data"], whole=not has_payload)
    owner = get(_OWNER)
    ended_at = _time(get(b"ended_at"))
    result_ttl = _int(get(b"result_ttl"))
    failure_ttl = _int(get(b"failure_ttl"))
    result, error = (None, None) if summary else _outcome(status, raw_results, get(b"exc_info"))
    timeout = get(b"timeout")
    return JobRecord(
        id=job_id,
        status=status,
        raw_status=raw_status,
        task=meta.get(META_TASK) if isinstance(meta.get(META_TASK), str) else None,
        queue=_text(get(b"origin")) or "",
        func_name=data[0] if data else None,
        payload=meta[META_PAYLOAD] if has_payload else (data[2][0] if data and data[2] else None),
        meta=meta,
        tags=tuple(map(str, meta.get(META_TAGS) or ())),
        description=_text(get(b"description")),
        submitted_at=meta.get(META_SUBMITTED_AT),
        created_at=_time(get(b"created_at")),
        enqueued_at=_time(get(b"enqueued_at")),
        started_at=_time(get(b"started_at")),
        ended_at=ended_at,
        result=result,
        error=error,
        progress=_progress(meta.get(META_PROGRESS)),
        retries_left=_int(get(b"retries_left")),
        depends_on=_depends_on(get(b"dependency_ids"), get(b"dependency_id")),
        timeout=_timeout(timeout) if timeout else None,
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        worker_name=_text(get(b"worker_name")),
        result_expires_at=_expiry(status, ended_at, result_ttl, failure_ttl),
        owner=owner.decode() if owner else None,
        summary=summary,
    )


_STATUSES = {status.value: status for status in JobStatus}
_OWNER = OWNER_FIELD.encode()


def _timeout(raw: bytes) -> int | None:
    """RQ's `parse_timeout`, whose `numbers.Integral` check costs more than the usual `int`."""
    try:
        return int(raw)
    except ValueError:
        return parse_timeout(raw.decode())


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw else None


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw else None


def _time(raw: bytes | None) -> datetime | None:
    return parse_time(raw.decode()) if raw else None


def _meta(raw: bytes | None) -> dict[str, Any]:
    """RQ's meta field (JSON); RQ reads an unreadable one as `{"unserialized": raw}`."""
    if not raw:
        return {}
    try:
        meta = jsoncodec.loads(raw)
    except ValueError:
        return {"unserialized": raw}
    return meta if isinstance(meta, dict) else {}


def _data(raw: bytes, whole: bool = True) -> tuple[str | None, Any, list[Any], Any] | None:
    """RQ's `data` field: `[func_name, instance, args, kwargs]` as JSON, usually zlib-compressed;
    `None` when another client wrote it in a format we cannot read. Unless `whole`, only the
    function's name is read (the payload is in the meta of every job we wrote): a JSON string
    scan instead of the arguments' whole document."""
    with contextlib.suppress(zlib.error):  # RQ falls back to the raw bytes too
        raw = zlib.decompress(raw)
    if not whole and raw.startswith(b'["'):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            return scanstring(raw.decode(), 2)[0], None, [], None
    try:
        func_name, instance, args, kwargs = jsoncodec.loads(raw)
    except (ValueError, TypeError):
        return None
    return func_name, instance, list(args or ()), kwargs


def _depends_on(ids: bytes | None, single: bytes | None) -> tuple[str, ...]:
    if ids:
        return tuple(jsoncodec.loads(ids))
    return (single.decode(),) if single else ()


def _outcome(
    status: JobStatus, raw_results: list[Any], exc_info: bytes | None
) -> tuple[Any, JobError | None]:
    """The job's result and error, from its latest results-stream entry (what `Result.restore`
    reads) or, for a failed job without one, the traceback on its hash."""
    result = None
    error = None
    if raw_results:
        fields = raw_results[0][1]
        kind = int(fields[b"type"])
        if kind == Result.Type.SUCCESSFUL.value:
            value = fields.get(b"return_value")
            result = jsoncodec.loads(base64.b64decode(value)) if value is not None else None
        elif kind == Result.Type.FAILED.value or status in _FAILED:
            exc_string = fields.get(b"exc_string")
            error = error_of(zlib.decompress(base64.b64decode(exc_string)).decode() if exc_string else None)
    if error is None and status in _FAILED and exc_info:
        error = error_of(_traceback(exc_info))
    return result, error


_FAILED = (JobStatus.FAILED, JobStatus.STOPPED)


def _traceback(raw: bytes) -> str:
    try:
        return zlib.decompress(raw).decode()
    except zlib.error:
        return raw.decode()


def record_from_job(job: Job, owner: str | None = None) -> JobRecord:
    """The record of a job we just enqueued through RQ, from what we wrote (no read back)."""
    raw_status = job.get_status(refresh=False).value
    status = JobStatus.parse(raw_status)
    meta: dict[str, Any] = job.meta if isinstance(job.meta, dict) else {}
    traceback = rq_adapter.stored_traceback(job)
    return JobRecord(
        id=job.id,
        status=status,
        raw_status=raw_status,
        task=meta.get(META_TASK) if isinstance(meta.get(META_TASK), str) else None,
        queue=job.origin,
        func_name=job.func_name,
        payload=meta[META_PAYLOAD] if META_PAYLOAD in meta else _first_arg(job),
        meta=meta,
        tags=tuple(str(t) for t in meta.get(META_TAGS) or ()),
        description=job.description,
        submitted_at=meta.get(META_SUBMITTED_AT),
        created_at=job.created_at,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        result=None,
        error=error_of(traceback) if status in _FAILED else None,
        progress=_progress(meta.get(META_PROGRESS)),
        retries_left=job.retries_left,
        depends_on=tuple(rq_adapter.dependency_ids(job)),
        timeout=int(job.timeout) if job.timeout is not None else None,
        result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
        worker_name=job.worker_name,
        result_expires_at=_expiry(status, job.ended_at, job.result_ttl, job.failure_ttl),
        owner=owner,
    )


def _first_arg(job: Job) -> Any:
    try:
        args = job.args
    except Exception:  # a job written by another client with a serializer we cannot read
        return None
    return args[0] if args else None


def error_of(traceback: str | None) -> JobError | None:
    """A traceback as a `JobError`: its last line split into type and message."""
    if not traceback:
        return None
    last = traceback.strip().splitlines()[-1] if traceback.strip() else ""
    exc_type, sep, message = last.partition(": ")
    if not sep or " " in exc_type:
        return JobError(type=None, message=last, traceback=traceback)
    return JobError(type=exc_type, message=message, traceback=traceback)


def _progress(raw: Any) -> Progress | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("current"), int | float):
        return None
    updated = raw.get("updated_at")
    total = raw.get("total")
    message = raw.get("message")
    return Progress(
        current=float(raw["current"]),
        total=float(total) if isinstance(total, int | float) else None,
        message=message if isinstance(message, str) else None,
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )


def _expiry(
    status: JobStatus, ended_at: datetime | None, result_ttl: int | None, failure_ttl: int | None
) -> datetime | None:
    if ended_at is None:
        return None
    ttl = result_ttl if status == JobStatus.FINISHED else failure_ttl
    if status not in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED) or ttl is None or ttl < 0:
        return None
    return ended_at + timedelta(seconds=ttl)
