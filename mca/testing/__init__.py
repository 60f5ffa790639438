"""Test doubles that ship with mca, as httpx ships `MockTransport` and pydantic-ai `TestModel`.

Core floor: nothing here imports a package (state, ingest, mcp_tools, agent, demo); doubles
that need a package's types live beside it (``state.testing.HashEmbedder``).

- `FrozenClock`: a `Clock` moved by hand.
- `rows`: seed events (dated `ago`) and identities, count rows, read one value or one row.
- `waiting`: a bounded wait for state only visible by looking.
- `http.serve_in_thread`: an ASGI app behind a real uvicorn on a loopback port.
- `kafka.running_broker`: a real Kafka-protocol broker (tansu, dev extra).
- `risingwave.FakeRisingWave`: a RisingWave frontend at the wire-protocol boundary.
"""

from mca.testing.clock import FrozenClock
from mca.testing.rows import add_events, ago, count, event_row, identify, insert_events, one, scalar
from mca.testing.waiting import wait_until, wait_until_async

__all__ = [
    "FrozenClock",
    "add_events",
    "ago",
    "count",
    "event_row",
    "identify",
    "insert_events",
    "one",
    "scalar",
    "wait_until",
    "wait_until_async",
]
