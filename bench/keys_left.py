"""What one hostile batch leaves in Redis once its jobs are gone (issue #13, "keys that never expire").

    .venv/bin/python -m bench.keys_left [--jobs 500] [--tags 20] [--node-bytes 512]

Starts its own redis-server, submits one `submitJobs` of N jobs with T unique tags each and
`resultTtl: 1` through the app (in-process), runs them with a burst worker, waits until every job
hash has expired, then reports the keys left without a TTL (by kind) and the memory they hold.
Not a test: it waits on real expiry.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker

from gql_jobs.app import create_app
from gql_jobs.settings import Settings
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.worker.job import EventedJob
from tests.redis_server import RedisServer

SUBMIT_MANY = "mutation($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { __typename } }"


def kind(key: bytes) -> str:
    """A key's family: its name up to the part that varies."""
    parts = key.decode().split(":")
    if parts[0] == "gql_jobs" and parts[1] == "stats":  # `gql_jobs:stats:<minute>`: one family
        return "gql_jobs:stats"
    return ":".join(parts[:3]) if parts[0] == "gql_jobs" else ":".join(parts[:2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--node-bytes", type=int, help="Redis' stream-node-max-bytes (default: Redis')")
    args = parser.parse_args()
    server = RedisServer(Path(tempfile.mkdtemp(prefix="gql-jobs-keys-left-")))
    server.start()
    try:
        connection = redis.Redis.from_url(server.url)
        if args.node_bytes:
            connection.config_set("stream-node-max-bytes", args.node_bytes)
        settings = Settings.model_validate({"redis_url": server.url, "max_tags": args.tags})
        with TestClient(create_app(settings)) as client:
            client.get("/healthz")
            before = int(connection.info("memory")["used_memory"])
            inputs = [
                {"task": "echo", "resultTtl": 1, "tags": [uuid.uuid4().hex[:12] for _ in range(args.tags)]}
                for _ in range(args.jobs)
            ]
            reply = client.post("/graphql", json={"query": SUBMIT_MANY, "variables": {"inputs": inputs}})
            kinds = Counter(r["__typename"] for r in reply.json()["data"]["submitJobs"])
            print(f"submitted: {dict(kinds)}")
            SimpleWorker(
                ["default"], connection=connection, serializer=SERIALIZER, job_class=EventedJob
            ).work(burst=True, logging_level="WARNING")
            deadline = time.monotonic() + 60
            while any(connection.scan_iter("rq:job:*", count=1000)) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = list(connection.scan_iter("*", count=1000))
            with connection.pipeline(transaction=False) as pipe:
                for key in left:
                    pipe.pttl(key)
                    pipe.memory_usage(key)
                replies = pipe.execute()
            ttls, sizes = replies[0::2], replies[1::2]
            forever = Counter(kind(k) for k, t in zip(left, ttls, strict=True) if t == -1)
            expiring = Counter(kind(k) for k, t in zip(left, ttls, strict=True) if t >= 0)
            after = int(connection.info("memory")["used_memory"])
            print(f"keys left: {len(left)}, without TTL: {sum(forever.values())}")
            print(f"  without TTL by kind: {dict(forever.most_common())}")
            print(f"  with TTL by kind: {dict(expiring.most_common())}")
            longest = max((t for t in ttls if t >= 0), default=0)
            print(
                f"  longest TTL left: {longest / 1000:.0f} s (index retention {settings.index_retention} s)"
            )
            print(f"bytes in keys left (MEMORY USAGE): {sum(s or 0 for s in sizes):,}")
            print(f"used_memory growth: {after - before:,} bytes")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
