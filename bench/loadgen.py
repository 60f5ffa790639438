"""A small HTTP/1.1 load generator for the ingest benchmark, run in its own process.

Pure asyncio over keep-alive connections with pre-built requests, so the generator spends
as little of the machine's CPU as possible. Prints one JSON object with the figures.

    python bench/loadgen.py --url http://127.0.0.1:8080/ingest --mode batch --seconds 10
    modes: batch (closed loop, --batch events a request), single (closed loop, one event),
           rate (open loop at --rate requests/s; latency from the scheduled send time),
           copy (the floor for batch: the same events as rows, ``COPY events FROM STDIN`` of
                 --batch rows a transaction over --connections database connections; --url is
                 then the database URL)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from urllib.parse import urlsplit

ID_MARK = b"@@@@@@@@"


def event_body(batch: int) -> bytes:
    """A body whose ids contain ID_MARK, replaced per request to keep every id unique."""
    events = [
        {
            "type": "track",
            "event": "purchase" if i % 5 == 0 else "page_view",
            "userId": f"user-{i % 997}",
            "messageId": f"{ID_MARK.decode()}-{i}",
            "timestamp": "2026-01-05T10:00:00Z",
            "properties": {"revenue": 12.5, "sku": f"SKU-{i % 50}", "category": "shoes", "points": 10},
        }
        for i in range(batch)
    ]
    return json.dumps({"batch": events} if batch > 1 else events[0]).encode()


class Client:
    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        self.host, self.port, self.path = host, port, path
        self.template = body
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{extra}"
        ).encode()
        self.prefix = uuid.uuid4().hex[:4].encode()
        self.counter = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self) -> int:
        self.counter += 1
        unique = (self.prefix + str(self.counter).encode()).ljust(len(ID_MARK), b"_")[: len(ID_MARK) + 8]
        body = self.template.replace(ID_MARK, unique)
        self.writer.write(self.head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def closed_loop(clients: list[Client], seconds: float) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def run(client: Client) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            status = await client.send()
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(run(c) for c in clients))
    return latencies, statuses


async def open_loop(clients: list[Client], seconds: float, rate: float) -> tuple[list[float], dict[int, int]]:
    """Requests leave on a fixed schedule; a late answer counts from when it was due."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    idle: asyncio.Queue[Client] = asyncio.Queue()
    for c in clients:
        idle.put_nowait(c)
    start = time.perf_counter()
    total = int(seconds * rate)
    tasks = []

    async def one(due: float) -> None:
        client = await idle.get()
        try:
            status = await client.send()
        finally:
            idle.put_nowait(client)
        latencies.append(time.perf_counter() - due)
        statuses[status] = statuses.get(status, 0) + 1

    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, statuses


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def copy_rows(batch: int) -> list[list[object]]:
    """The events of ``event_body(batch)`` as the rows ``/ingest`` stores (columns COPY_COLUMNS)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    ts = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    rows: list[list[object]] = []
    for event in json.loads(event_body(batch)).get("batch") or [json.loads(event_body(1))]:
        props = event["properties"]
        rows.append(
            [event["messageId"], event["userId"], event["event"], ts, now, "segment", props["revenue"],
             props["points"], props["sku"], props["category"], None, json.dumps(props)]
        )  # fmt: skip
    return rows


COPY_COLUMNS = (
    "event_id, user_id, event_type, ts, received_at, source, value, points, sku, category, text, properties"
)


async def copy_loop(
    url: str, connections: int, batch: int, seconds: float
) -> tuple[list[float], dict[int, int]]:
    """Closed loop of COPY transactions: what loading these rows costs without mca in the way."""
    import psycopg

    template = copy_rows(batch)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    conns = [await psycopg.AsyncConnection.connect(url) for _ in range(connections)]
    deadline = time.perf_counter() + seconds

    async def run(conn: psycopg.AsyncConnection[object], prefix: str) -> None:
        counter = 0
        while time.perf_counter() < deadline:
            counter += 1
            unique = f"{prefix}{counter}"
            start = time.perf_counter()
            async with conn.cursor() as cur, cur.copy(f"COPY events ({COPY_COLUMNS}) FROM STDIN") as copy:
                for row in template:
                    await copy.write_row([str(row[0]).replace(ID_MARK.decode(), unique), *row[1:]])
            await conn.commit()
            latencies.append(time.perf_counter() - start)
            statuses[202] = statuses.get(202, 0) + 1

    try:
        await asyncio.gather(*(run(c, f"copy{uuid.uuid4().hex[:4]}") for c in conns))
    finally:
        for c in conns:
            await c.close()
    return latencies, statuses


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["batch", "single", "rate", "copy"], default="batch")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    batch = args.batch if args.mode in ("batch", "copy") else 1
    if args.mode == "copy":
        if args.warmup:
            await copy_loop(args.url, args.connections, batch, args.warmup)
        began = time.perf_counter()
        latencies, statuses = await copy_loop(args.url, args.connections, batch, args.seconds)
        print_figures(args.mode, batch, latencies, statuses, time.perf_counter() - began)
        return
    parts = urlsplit(args.url)
    body = event_body(batch)
    clients = [
        Client(parts.hostname or "127.0.0.1", parts.port or 80, parts.path, body, {})
        for _ in range(args.connections)
    ]
    for c in clients:
        await c.connect()
    if args.warmup:
        await closed_loop(clients, args.warmup)
    began = time.perf_counter()
    if args.mode == "rate":
        latencies, statuses = await open_loop(clients, args.seconds, args.rate)
    else:
        latencies, statuses = await closed_loop(clients, args.seconds)
    print_figures(args.mode, batch, latencies, statuses, time.perf_counter() - began)


def print_figures(
    mode: str, batch: int, latencies: list[float], statuses: dict[int, int], elapsed: float
) -> None:
    ok = statuses.get(202, 0)
    print(
        json.dumps(
            {
                "mode": mode,
                "seconds": round(elapsed, 2),
                "requests": len(latencies),
                "statuses": statuses,
                "req_per_s": round(len(latencies) / elapsed, 1),
                "events_per_s": round(ok * batch / elapsed, 1),
                "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
                "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
                "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
