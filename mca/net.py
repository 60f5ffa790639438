"""Loopback networking helpers shared by the embedded server, the demo, tests and benchmarks.

A port from `free_port()` is free only when asked: between closing the probe and the real
server binding it, another process (a parallel test worker, an outgoing connection's source
port) may take it. Servers we run in-process get a socket that is already bound
(`listening_socket`); a program we start (postgres, a broker, `mca serve`) is started through
`on_free_port`, which picks another port when the program could not bind the one it got.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BIND_ATTEMPTS = 5


class PortTaken(OSError):
    """The program could not listen on the port it was given: someone else holds it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket already bound and listening (port 0: the OS picks), to hand to a server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def on_free_port(start: Callable[[int], T], attempts: int = BIND_ATTEMPTS) -> T:
    """`start(port)` on a fresh free port, again on another while it raises `PortTaken`."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` (or a child of it) itself listens on TCP `port`.

    A connection that succeeds proves only that *someone* listens there; after a lost race it
    is the winner, not the program we started.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        for each in procs:
            for conn in each.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    except psutil.Error:
        return False
    return False
