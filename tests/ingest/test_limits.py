"""What /ingest refuses before anything is stored: deep nesting, NUL characters, time zones
PostgreSQL does not know, ids longer than the tools accept, and bodies it cannot decode."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import psycopg
from mcp import Client

from ingest.body import MAX_REQUEST_BYTES
from ingest.fields import _zone_names
from mca.db import Stores
from mca.limits import MAX_ID_CHARS
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import FrozenClock
from mcp_tools.server import build_server
from tests.mcp_tools.helpers import NOON, call, seed_world

JSON = {"content-type": "application/json"}


def nested(levels: int, leaf: Any = 1, key: str = "a") -> Any:
    """``{"a": {"a": ... leaf}}`` with ``levels`` objects, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


def track(props: Any, i: int = 0) -> dict[str, Any]:
    return {"type": "track", "event": "visit", "userId": "u1", "messageId": f"m-{i}", "properties": props}


async def test_depth_is_bounded_at_parse_time_naming_the_path(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    # The event is level 1 and properties (the outermost of these objects) level 2.
    assert (await client.post("/ingest", json=track(nested(31)))).status_code == 202
    too_deep = await client.post("/ingest", json=track(nested(32), 1))
    assert too_deep.status_code == 422
    [error] = too_deep.json()["error"]["errors"]
    assert error["reason"] == "nested more than 32 levels deep (MCA_INGEST_MAX_DEPTH)"
    assert error["field"] == "properties" + ".a" * 31
    # Long keys: the path keeps its head and its last segment.
    long_keys = await client.post("/ingest", json=track(nested(40, key="k" * 30), 1))
    path = long_keys.json()["error"]["errors"][0]["field"]
    assert path.startswith("properties.kkk") and path.endswith("…." + "k" * 30) and len(path) < 120
    # 300 levels used to parse, fail to serialise and answer 500 (in a batch over 32 KB,
    # measuring each event's size serialises it first).
    pad = [track({"pad": "x" * 20_000}, i) for i in (2, 3)]
    batch = {"batch": [*pad, track(nested(300), 4)]}
    deep = await client.post("/ingest", json=batch)
    assert deep.status_code == 422 and deep.json()["error"]["errors"][0]["field"].startswith(
        "batch[2].properties.a"
    )
    # A batch's shared context is merged into every event: it is bounded too.
    shared = await client.post("/ingest", json={"batch": [track({}, 5)], "context": nested(40)})
    assert shared.status_code == 422 and shared.json()["error"]["errors"][0]["field"].startswith(
        "context.a.a"
    )
    assert count_events() == 1


async def test_a_nul_nested_near_the_parser_limit_is_a_clear_422(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    # ~990 levels with a NUL escape at the bottom used to hit Python's recursion limit (500).
    head = orjson.dumps(track(None))[: -len(b"null}")]  # orjson itself cannot write this depth
    body = head + b'{"a":' * 990 + b'"a\\u0000b"' + b"}" * 990 + b"}"
    resp = await client.post("/ingest", content=body, headers=JSON)
    assert resp.status_code == 422 and "levels deep" in resp.json()["error"]["errors"][0]["reason"]
    nul = await client.post(
        "/ingest", json={"batch": [track({}, 1), track({"x": [{"k\x00": 1}, "b\x00"]}, 2)]}
    )
    assert nul.status_code == 422
    assert {e["field"] for e in nul.json()["error"]["errors"]} == {
        "batch[1].properties.x[0].k\x00",
        "batch[1].properties.x[1]",
    }
    assert all("NUL" in e["reason"] for e in nul.json()["error"]["errors"])
    assert count_events() == 0


async def test_max_depth_is_a_setting(make_client: Callable[..., Any]) -> None:
    async with make_client(ingest_max_depth=4) as client:
        assert (await client.post("/ingest", json=track(nested(3)))).status_code == 202
        resp = await client.post("/ingest", json=track(nested(4), 1))
        assert resp.status_code == 422 and resp.json()["error"]["errors"][0]["field"] == "properties.a.a.a"


async def test_time_zones_are_checked_at_ingest(client: httpx.AsyncClient, db_url: str) -> None:
    def identify(zone: Any, user: str = "u1") -> dict[str, Any]:
        return {"type": "identify", "userId": user, "traits": {"timezone": zone}}

    for bad in ("Mars/Olympus_Mons", "localtime", "../etc/passwd", 3, ""):
        resp = await client.post("/ingest", json=identify(bad))
        assert resp.status_code == 422, bad
        assert resp.json()["error"]["errors"] == [
            {"field": "traits.timezone", "reason": "must be an IANA time zone such as Europe/Paris"}
        ]
    assert (await client.post("/ingest", json=identify("Europe/Paris"))).status_code == 202
    assert (await client.post("/ingest", json=identify("america/new_york", "u2"))).status_code == 202
    # Every name ingest accepts, in either case, is one PostgreSQL can convert times into.
    names = sorted(set(_zone_names()) | set(_zone_names().values()))
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM unnest(%s::text[]) AS z WHERE (now() AT TIME ZONE z) IS NOT NULL", (names,)
        ).fetchone()
    assert row == (len(names),) and len(names) > 500


async def test_the_longest_accepted_user_id_can_be_acted_on(
    client: httpx.AsyncClient, settings: Settings, stores: Stores, db_url: str
) -> None:
    seed_world(db_url)  # the catalogue (and other customers)
    longest = "u" * MAX_ID_CHARS
    traits = {"phone": "+15550000099", "email": "l@example.com", "timezone": "UTC", "consent_email": True}
    too_long = await client.post(
        "/ingest", json={"type": "identify", "userId": longest + "x", "traits": traits}
    )
    assert too_long.status_code == 422 and too_long.json()["error"]["errors"][0]["field"] == "userId"
    ok = await client.post("/ingest", json={"type": "identify", "userId": longest, "traits": traits})
    assert ok.status_code == 202, ok.text
    tools = settings.model_copy(update={"policy_file": PROJECT_ROOT / "config" / "policy.yaml"})
    server = build_server(tools, stores, clock=FrozenClock(NOON))
    async with Client(server) as mcp:
        is_error, result = await call(
            mcp, "send_coupon", {"user_id": longest, "asset_id": "A10", "reason": "thanks"}, decision="d-long"
        )
    assert not is_error and result["status"] == "allowed", result


async def test_gzip_bodies_are_decoded_within_the_limit(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    body = orjson.dumps({"batch": [track({"n": i}, i) for i in range(50)]})
    zipped = await client.post(
        "/ingest", content=gzip.compress(body), headers={**JSON, "content-encoding": "gzip"}
    )
    assert zipped.status_code == 202 and zipped.json()["accepted"] == 50, zipped.text
    # Two members, as `cat a.gz b.gz` makes: one body.
    halves = gzip.compress(body[:100]) + gzip.compress(body[100:])
    again = await client.post("/ingest", content=halves, headers={**JSON, "content-encoding": "gzip"})
    assert again.status_code == 202 and again.json()["duplicates"] == 50
    # A zip bomb: ~50 KB on the wire, 50 MB inflated; refused while inflating.
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    wire = bomb.compress(b" " * (50 * 1024 * 1024)) + bomb.flush()
    assert len(wire) < MAX_REQUEST_BYTES
    refused = await client.post("/ingest", content=wire, headers={**JSON, "content-encoding": "gzip"})
    assert refused.status_code == 413 and "decompressed" in refused.json()["error"]["message"]
    broken = await client.post(
        "/ingest", content=b"\x1f\x8bnot gzip", headers={**JSON, "content-encoding": "gzip"}
    )
    assert broken.status_code == 422 and broken.json()["error"]["errors"][0]["field"] == "body"
    cut = await client.post(
        "/ingest", content=gzip.compress(body)[:-20], headers={**JSON, "content-encoding": "gzip"}
    )
    assert cut.status_code == 422 and "truncated" in cut.json()["error"]["errors"][0]["reason"]
    brotli = await client.post("/ingest", content=body, headers={**JSON, "content-encoding": "br"})
    assert brotli.status_code == 415 and "content-encoding br" in brotli.json()["error"]["message"]
    assert count_events() == 50
