"""What every long-running `mca` command does the same way: its log format and its graceful stop.

One format, so the lines of `mca trigger`, `mca agent`, `mca sink` and `mca dispatch` read alike
in one journal; one stop, so SIGTERM (compose, systemd) and Ctrl-C end each of them the same way:
the work in hand is finished, then the command returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(level: int = logging.INFO, *, stream: TextIO | None = None) -> None:
    """Root logging for a command. `mca mcp --stdio` passes stderr: stdout carries its protocol."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=stream or sys.stderr)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, for a command that runs until stopped (its process ends
    with it, so the handlers stay). Call inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextmanager
def signals_set(stop: asyncio.Event) -> Iterator[asyncio.Event]:
    """SIGINT/SIGTERM set `stop` while inside; the loop's handlers are removed on leaving (for a
    run inside a longer process, such as the demo or a test)."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def thread_stop_on_signals() -> threading.Event:
    """The same stop for a synchronous worker (`mca sink`): the signal only sets the event, the
    worker finishes its batch and returns. Call from the main thread."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    return stop
