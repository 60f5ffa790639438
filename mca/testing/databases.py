"""Fresh databases copied from a migrated template, made ahead of time in a background thread.

A ``CREATE DATABASE … TEMPLATE`` costs a few hundred milliseconds of server I/O; made while
the previous test runs, it no longer adds to each test's set-up. Used databases are dropped
by the same thread. Every database is still a private copy: tests never share rows.

A background ``CREATE DATABASE`` is a running transaction of the whole server, so it holds
back ``pg_snapshot_xmin``: a test that reads only rows older than every running transaction
(the trigger source does) holds `quiet()` while it runs, and the thread waits.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

# Server settings for a throw-away test server: nothing has to survive a crash of it, so
# commits need not wait for the disk.
THROWAWAY_SERVER_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def make_throwaway(admin_url: str) -> None:
    """Apply `THROWAWAY_SERVER_OPTIONS` to a running server (all reloadable, no restart)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for key, value in THROWAWAY_SERVER_OPTIONS.items():
            conn.execute(f"ALTER SYSTEM SET {key} = {value}")  # type: ignore[arg-type]
        conn.execute("SELECT pg_reload_conf()")


def copy_of(template: str, name: str) -> Any:
    """``CREATE DATABASE name`` as a copy of `template`, file by file.

    FILE_COPY copies the template's files and checkpoints instead of writing every page to
    the WAL (WAL_LOG, the default since PostgreSQL 15): for a small template on a throw-away
    server it is about four times faster (37 ms against 160 ms, median of 10 on 2 cores).
    """
    return f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY'


class DatabasePool:
    """`take()` a fresh copy of `template`; `give_back(name)` drops it later."""

    def __init__(self, admin_url: str, url_of: Callable[[str], str], template: str, depth: int = 2) -> None:
        self.admin_url = admin_url
        self.url_of = url_of
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=depth)
        self._used: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._busy = threading.Lock()  # held by each statement of the thread, or by quiet()
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self._thread.start()

    def take(self, timeout_s: float = 60.0) -> str:
        """The URL of a fresh database nobody else uses."""
        try:
            item = self._ready.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError(f"no fresh test database within {timeout_s}s") from None
        if isinstance(item, BaseException):
            self._ready.put(item)  # every later take fails the same way
            raise RuntimeError(f"making a test database failed: {item}") from item
        return self.url_of(item)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No database is made or dropped inside this block (take one before entering)."""
        with self._busy:
            yield

    def give_back(self, url: str) -> None:
        self._used.put(url.rsplit("/", 1)[1])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._ready.empty():
                item = self._ready.get_nowait()
                if isinstance(item, str):
                    self._used.put(item)
            self._drop_used(conn)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                while not self._stop.is_set():
                    self._drop_used(conn)
                    name = f"t_{uuid.uuid4().hex[:12]}"
                    with self._busy:
                        conn.execute(copy_of(self.template, name))
                    self._offer(conn, name)
        except BaseException as err:  # handed to the next take(), which names it
            self._ready.put(err)

    def _offer(self, conn: psycopg.Connection[object], name: str) -> None:
        while not self._stop.is_set():
            try:
                self._ready.put(name, timeout=0.2)
                return
            except queue.Full:
                self._drop_used(conn)  # while every slot is full, clear what tests gave back
        self._used.put(name)

    def _drop_used(self, conn: psycopg.Connection[object]) -> None:
        while not self._used.empty():
            name = self._used.get_nowait()
            with self._busy:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
