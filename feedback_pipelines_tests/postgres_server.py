"""A throwaway PostgreSQL server for the tests: Debian's binaries, 127.0.0.1, a random port.

One server per test session (started on first use, stopped at the end): `initdb` into a fresh
temporary folder, `pg_ctl start` listening only on 127.0.0.1 (and a socket in that folder),
trust authentication, durability off (it is thrown away). As root, the server runs as the
`postgres` user, since initdb refuses to run as root. Needs Debian's `postgresql` package
(`scripts/system-deps.sh` installs it; `make test` runs that script).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found (initdb): install Debian's `postgresql` package "
        "with `bash scripts/system-deps.sh` (make test does this)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throwaway server."""

    root: Path
    port: int
    bindir: Path
    run_as: str | None
    user: str = "postgres"
    password: str = "test-password"  # trust auth accepts any; set for DSNs that need one
    running: bool = True

    @property
    def host(self) -> str:
        """Where it listens."""
        return "127.0.0.1"

    def url(self, dbname: str = "postgres") -> str:
        """A postgresql:// URL for one database."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create a fresh database (dropping one of that name) and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + pg_ctl start; retried on a port taken meanwhile."""
        bindir = _bindir()
        run_as = "postgres" if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="feedback-pg-"))
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(root, 0, bindir, run_as)
        subprocess.run(
            server._cmd(
                str(bindir / "initdb"),
                "-D", str(root / "data"),
                "-U", server.user,
                "--auth=trust",
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
            ),
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        last_error = ""
        for _ in range(3):
            server.port = _free_port()
            options = (
                f"-h 127.0.0.1 -p {server.port} -k {root} -F "
                "-c full_page_writes=off -c synchronous_commit=off -c max_connections=60 "
                "-c shared_buffers=32MB"
            )
            proc = subprocess.run(
                server._cmd(
                    str(bindir / "pg_ctl"), "-D", str(root / "data"), "-o", options,
                    "-l", str(root / "server.log"), "-w", "-t", "60", "start",
                ),
                capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode == 0:
                server.running = True
                return server
            last_error = proc.stderr + (root / "server.log").read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def stop(self) -> None:
        """Stop the server and delete its folder (safe to call twice)."""
        if not self.running:
            return
        self.running = False
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                      "immediate", "-w", "stop"),
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


_SERVER: PostgresServer | None = None


def get_server() -> PostgresServer:
    """The session's one server, started on first use (and stopped at exit at the latest)."""
    global _SERVER
    if _SERVER is None or not _SERVER.running:
        _SERVER = PostgresServer.start()
        atexit.register(_SERVER.stop)
    return _SERVER


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (shared by every module that asks)."""
    server = get_server()
    yield server
    server.stop()
