"""A value read from a file and re-read when the file changes: the one hot-reload for YAML config.

Operators edit the policy and the triggers file without a redeploy. A stat per read (a couple
of microseconds) is cheaper than a watcher thread and exact; the (mtime, size) pair catches an
edit within one mtime tick that changes the length. A bad edit never takes effect: the last
good value stays, and ``last_error`` says why the new one was refused until a good edit lands.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
Stamp = tuple[int, int] | None
log = logging.getLogger(__name__)


def file_stamp(path: Path) -> Stamp:
    """(mtime_ns, size) of a file, None when it cannot be read (a missing file is a change too)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ReloadingFile(Generic[T]):
    """``load(path)`` once now (its error propagates: a bad file fails at start-up), and again
    whenever the file's stamp changes. Thread-safe: one reload at a time, readers never block
    on the fast path. ``rejects`` are the exceptions a bad edit raises; anything else is a bug
    and propagates."""

    def __init__(
        self,
        path: Path,
        load: Callable[[Path], T],
        *,
        rejects: tuple[type[Exception], ...],
        on_reload: Callable[[T, T], None] | None = None,
        what: str = "file",
    ) -> None:
        self.path = Path(path)
        self._load = load
        self._rejects = rejects
        self._on_reload = on_reload
        self._what = what
        self._lock = threading.Lock()
        self._stamp = file_stamp(self.path)
        self._value = load(self.path)
        self.last_error: Exception | None = None

    @property
    def value(self) -> T:
        """The last good value, without looking at the file."""
        return self._value

    def current(self) -> T:
        """The value in force, re-read first when the file changed since the last look."""
        stamp = file_stamp(self.path)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:  # another thread may have reloaded while we waited
                    self._reload(stamp)
        return self._value

    def _reload(self, stamp: Stamp) -> None:
        # The stamp moves last: a reader on the lock-free path that sees the new stamp must also
        # see the new value. It moves on a rejected edit too, so a bad file is parsed once.
        try:
            value = self._load(self.path)
        except self._rejects as err:
            self.last_error = err
            self._stamp = stamp
            log.error("%s %s rejected, the previous one stays in force: %s", self._what, self.path, err)
            return
        self.last_error = None
        previous, self._value = self._value, value
        self._stamp = stamp
        if self._on_reload is not None:
            self._on_reload(previous, value)
