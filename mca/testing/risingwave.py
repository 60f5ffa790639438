"""A stand-in for a RisingWave frontend at the wire-protocol boundary, for tests only.

RisingWave cannot run on these machines (no Docker, no binary in the package registries), so
the RisingWave code paths are exercised against this small server: it speaks the PostgreSQL
v3 wire protocol (simple and extended query), answers ``SELECT version()`` as RisingWave
does, rejects multi-statement queries and ``BEGIN``-wrapped DDL the way RisingWave's frontend
would surface them to us, and records every statement it receives so a test can assert what
mca sent. It keeps the migration ledgers, ``events`` rows and which materialized view reads
which in memory, nothing more; as RisingWave, it refuses to drop a view another one reads.
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

VERSION = "PostgreSQL 13.14.0-RisingWave-2.6.2 (fake for tests)"
TEXT_OID = 25


@dataclass
class FakeRisingWave:
    statements: list[str] = field(default_factory=list)
    ledger: list[dict[str, str]] = field(default_factory=list)
    events: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    flushes: int = 0
    port: int = 0
    views: dict[str, set[str]] = field(default_factory=dict)  # materialized view -> what it reads
    view_ledger: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/dev"

    # --- what a statement returns: (columns, rows, command tag) ---------------------------
    def run(self, sql: str, params: list[str | None]) -> tuple[list[str], list[list[str | None]], str]:
        text = sql.strip().rstrip(";").strip()
        self.statements.append(text)
        upper = text.upper()
        if ";" in _strip_literals(text):
            raise FakeError("42601", "RisingWave accepts one statement per query here")
        if upper.startswith("SELECT VERSION()"):
            return ["version"], [[VERSION]], "SELECT 1"
        if upper.startswith("SELECT FILENAME, CHECKSUM FROM MCA_MIGRATIONS"):
            rows: list[list[str | None]] = [
                [r["filename"], r["checksum"]] for r in self.ledger if r["store"] == params[0]
            ]
            return ["filename", "checksum"], rows, f"SELECT {len(rows)}"
        if upper.startswith("INSERT INTO MCA_MIGRATIONS"):
            store, filename, checksum, engine = params[:4]
            self.ledger.append(
                {
                    "store": str(store),
                    "filename": str(filename),
                    "checksum": str(checksum),
                    "engine": str(engine),
                }
            )
            return [], [], "INSERT 0 1"
        if upper.startswith("INSERT INTO EVENTS"):
            width = len(_columns_of_insert(text))
            for i in range(0, len(params), width):
                row = tuple(params[i : i + width])
                self.events[str(row[0])] = row  # primary key: a redelivery overwrites itself
            return [], [], f"INSERT 0 {len(params) // max(width, 1)}"
        if upper.startswith(
            ("SELECT NAME, CHECKSUM FROM MCA_VIEWS", "INSERT INTO MCA_VIEWS", "DELETE FROM MCA_VIEWS")
        ):
            return self._view_ledger(upper, params)
        if upper.startswith("SELECT NAME FROM RW_CATALOG.RW_RELATIONS"):
            return ["name"], [[name] for name in self.views], f"SELECT {len(self.views)}"
        if upper.startswith("CREATE MATERIALIZED VIEW"):
            return self._create_view(text)
        if upper.startswith("DROP MATERIALIZED VIEW"):
            return self._drop_view(text)
        if upper == "FLUSH":
            self.flushes += 1
            return [], [], "FLUSH"
        if upper.startswith(("BEGIN", "START TRANSACTION")):
            return [], [], "BEGIN"
        if upper.startswith(("COMMIT", "ROLLBACK")):
            return [], [], upper.split()[0]
        if upper.startswith(("CREATE", "SET", "DROP")):
            return [], [], " ".join(upper.split()[:2])
        raise FakeError("0A000", f"fake RisingWave does not know: {text[:60]}")

    def _view_ledger(
        self, upper: str, params: list[str | None]
    ) -> tuple[list[str], list[list[str | None]], str]:
        if upper.startswith("SELECT"):
            rows: list[list[str | None]] = [
                [r["name"], r["checksum"]] for (store, _), r in self.view_ledger.items() if store == params[0]
            ]
            return ["name", "checksum"], rows, f"SELECT {len(rows)}"
        if upper.startswith("INSERT"):
            store, name, filename, checksum = (str(p) for p in params[:4])
            self.view_ledger[(store, name)] = {"name": name, "filename": filename, "checksum": checksum}
            return [], [], "INSERT 0 1"
        self.view_ledger.pop((str(params[0]), str(params[1])), None)
        return [], [], "DELETE 1"

    def _create_view(self, text: str) -> tuple[list[str], list[list[str | None]], str]:
        name = text.split()[3]
        if name in self.views:
            raise FakeError("42P07", f"relation {name} already exists")
        words = set(re.findall(r"\b\w+\b", _strip_literals(text.split(None, 5)[-1])))
        self.views[name] = {v for v in self.views if v in words}
        return [], [], "CREATE_MATERIALIZED_VIEW"

    def _drop_view(self, text: str) -> tuple[list[str], list[list[str | None]], str]:
        name = text.split()[-1]
        if name not in self.views:
            if "IF EXISTS" in text.upper():
                return [], [], "DROP_MATERIALIZED_VIEW"
            raise FakeError("42P01", f"materialized view {name} not found")
        readers = sorted(v for v, reads in self.views.items() if name in reads)
        if readers:
            raise FakeError("XX000", f"Permission denied: {name} is read by {', '.join(readers)}")
        del self.views[name]
        return [], [], "DROP_MATERIALIZED_VIEW"

    # --- server ---------------------------------------------------------------------------
    @contextmanager
    def serving(self) -> Iterator[FakeRisingWave]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        server_box: list[asyncio.base_events.Server] = []

        async def start() -> None:
            server = await asyncio.start_server(self._session, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            server_box.append(server)
            started.set()

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), loop)
        if not started.wait(timeout=10):
            raise RuntimeError("fake RisingWave did not start")
        try:
            yield self
        finally:

            async def stop() -> None:
                server_box[0].close()
                await server_box[0].wait_closed()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handshake(reader, writer)
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code in (80877103, 80877104):  # SSLRequest / GSSENCRequest: not offered
                writer.write(b"N")
                await writer.drain()
                continue
            break
        writer.write(_msg(b"R", struct.pack("!I", 0)))
        for key, value in (
            ("server_version", "13.14.0"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("standard_conforming_strings", "on"),
            ("DateStyle", "ISO, MDY"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
        ):
            writer.write(_msg(b"S", _cstr(key) + _cstr(value)))
        writer.write(_msg(b"K", struct.pack("!II", 1, 1)))
        writer.write(_msg(b"Z", b"I"))
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prepared: dict[str, str] = {}
        portal: tuple[str, list[str | None]] | None = None
        failed = False
        while True:
            kind = await reader.readexactly(1)
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            if kind == b"X":
                return
            if kind == b"Q":
                sql = body[:-1].decode()
                writer.write(self._respond(sql, [], describe=True))
                writer.write(_msg(b"Z", b"I"))
            elif kind == b"P":
                name, rest = _read_cstr(body)
                query, _ = _read_cstr(rest)
                prepared[name] = query
                if not failed:
                    writer.write(_msg(b"1", b""))
            elif kind == b"B":
                _, rest = _read_cstr(body)
                stmt, rest = _read_cstr(rest)
                portal = (prepared[stmt], _bind_params(rest))
                if not failed:
                    writer.write(_msg(b"2", b""))
            elif kind == b"D":
                pass  # answered together with Execute below
            elif kind == b"E":
                if not failed and portal is not None:
                    response = self._respond(portal[0], portal[1], describe=True)
                    failed = response.startswith(b"E")
                    writer.write(response)
            elif kind == b"S":
                writer.write(_msg(b"Z", b"I"))
                failed = False
            elif kind == b"C":
                writer.write(_msg(b"3", b""))  # CloseComplete; Flush ("H") needs no answer
            await writer.drain()

    def _respond(self, sql: str, params: list[str | None], *, describe: bool) -> bytes:
        try:
            columns, rows, tag = self.run(sql, params)
        except FakeError as err:
            fields = b"SERROR\x00" + b"C" + _cstr(err.code) + b"M" + _cstr(err.message) + b"\x00"
            return _msg(b"E", fields)
        out = b""
        if describe:
            if columns:
                desc = struct.pack("!H", len(columns))
                for col in columns:
                    desc += _cstr(col) + struct.pack("!IHIhih", 0, 0, TEXT_OID, -1, -1, 0)
                out += _msg(b"T", desc)
            else:
                out += _msg(b"n", b"")
        for row in rows:
            data = struct.pack("!H", len(row))
            for value in row:
                if value is None:
                    data += struct.pack("!i", -1)
                else:
                    raw = value.encode()
                    data += struct.pack("!i", len(raw)) + raw
            out += _msg(b"D", data)
        return out + _msg(b"C", _cstr(tag))


class FakeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def _read_cstr(data: bytes) -> tuple[str, bytes]:
    end = data.index(b"\x00")
    return data[:end].decode(), data[end + 1 :]


def _bind_params(data: bytes) -> list[str | None]:
    n_formats = struct.unpack("!H", data[:2])[0]
    offset = 2 + 2 * n_formats
    n_params = struct.unpack("!H", data[offset : offset + 2])[0]
    offset += 2
    params: list[str | None] = []
    for _ in range(n_params):
        size = struct.unpack("!i", data[offset : offset + 4])[0]
        offset += 4
        if size < 0:
            params.append(None)
        else:
            params.append(data[offset : offset + size].decode(errors="replace"))
            offset += size
    return params


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _columns_of_insert(sql: str) -> list[str]:
    match = re.search(r"INSERT\s+INTO\s+events\s*\(([^)]*)\)", sql, re.IGNORECASE)
    return [c.strip() for c in match.group(1).split(",")] if match else ["event_id"]
