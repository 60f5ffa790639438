"""Asset search and loading against the real embedded PostgreSQL; ranking by meaning with the
real model (``real_model``), filters and loading with the hash embedder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mca.db import connect, connect_async
from mca.errors import InputError
from state.catalogue import format_hits, load_assets, search_assets
from state.embedding import Embedder

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def asset(asset_id: str, kind: str, title: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"asset_id": asset_id, "kind": kind, "title": title, "description": description, **extra}


USD = {"currency": "USD"}
ASSETS: list[dict[str, Any]] = [
    asset("stove", "coupon", "$10 off a camping stove",
          "A compact canister stove that boils water fast at the campsite.",
          value=10, category="outdoor", tags=["camping", "stove"], **USD),
    asset("tent-guide", "content", "Pitching your first tent",
          "How to pitch a backpacking tent and stay dry on a camping trip.", category="outdoor"),
    asset("lipstick", "coupon", "$5 off matte lipstick", "A long-wearing matte lipstick in twenty shades.",
          value=5, category="beauty", **USD),
    asset("stove-reward", "reward", "Free camp stove for 6,400 points",
          "Redeem points for a lightweight backpacking stove.", value=6400, currency="points",
          category="outdoor"),
    asset("stove-old", "coupon", "Spring sale: camping stove",
          "Twenty dollars off camping stoves, spring only.",
          value=20, category="outdoor", valid_from="2026-03-01T00:00:00Z",
          valid_until="2026-04-01T00:00:00Z", **USD),
    asset("stove-off", "coupon", "Camping stove clearance",
          "Clearance price on last season's camping stoves.",
          value=15, category="outdoor", active=False, **USD),
    asset("headphones", "coupon", "$40 off headphones", "Noise-cancelling wireless headphones for travel.",
          value=40, category="electronics", **USD),
]  # fmt: skip


def write_json(tmp_path: Path, rows: list[dict[str, Any]], name: str = "assets.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def loaded(db_url: str, embedder: Embedder, tmp_path: Path) -> str:
    with connect(db_url, autocommit=True) as conn:
        assert load_assets(conn, write_json(tmp_path, ASSETS), embedder, progress=False) == len(ASSETS)
    return db_url


@pytest.fixture
async def aconn(loaded: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(loaded, autocommit=True)
    yield conn
    await conn.close()


def ids(hits: list[Any]) -> list[str]:
    return [h.asset_id for h in hits]


def count_assets(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM assets").fetchone()
    assert row is not None
    return int(row["n"])


@pytest.mark.real_model
async def test_search_ranks_by_meaning(aconn: psycopg.AsyncConnection[Any], embedder: Embedder) -> None:
    hits = await search_assets(aconn, embedder, "camping stove", k=3, now=NOW)
    assert hits[0].asset_id in ("stove", "stove-reward")
    assert "lipstick" not in ids(hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(0 < h.score <= 1 for h in hits)
    stove = next(h for h in hits if h.asset_id == "stove")
    assert stove.value == Decimal("10") and stove.currency == "USD" and stove.tags == ["camping", "stove"]
    assert "stove" in format_hits(hits)


async def test_k_limits_the_results(aconn: psycopg.AsyncConnection[Any], embedder: Embedder) -> None:
    assert len(await search_assets(aconn, embedder, "anything", k=2, now=NOW)) == 2
    # Five rows are active and valid on NOW: asking for more returns exactly those.
    everything = await search_assets(aconn, embedder, "anything", k=50, now=NOW)
    assert sorted(ids(everything)) == ["headphones", "lipstick", "stove", "stove-reward", "tent-guide"]


async def test_kind_filter(aconn: psycopg.AsyncConnection[Any], embedder: Embedder) -> None:
    hits = await search_assets(aconn, embedder, "camping stove", kind="reward", k=5, now=NOW)
    assert ids(hits) == ["stove-reward"]


async def test_category_filter(aconn: psycopg.AsyncConnection[Any], embedder: Embedder) -> None:
    hits = await search_assets(aconn, embedder, "camping stove", category="beauty", k=5, now=NOW)
    assert ids(hits) == ["lipstick"]


async def test_max_value_filter_keeps_content(
    aconn: psycopg.AsyncConnection[Any], embedder: Embedder
) -> None:
    hits = await search_assets(aconn, embedder, "camping", max_value=10, k=10, now=NOW)
    assert sorted(ids(hits)) == ["lipstick", "stove", "tent-guide"]


async def test_inactive_and_out_of_window_are_excluded(
    aconn: psycopg.AsyncConnection[Any], embedder: Embedder
) -> None:
    hits = await search_assets(aconn, embedder, "camping stove sale", k=10, now=NOW)
    assert "stove-old" not in ids(hits) and "stove-off" not in ids(hits)
    in_spring = await search_assets(
        aconn, embedder, "camping stove sale", k=10, now=datetime(2026, 3, 15, tzinfo=UTC)
    )
    assert "stove-old" in ids(in_spring)
    at_expiry = await search_assets(
        aconn, embedder, "camping stove sale", k=10, now=datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert "stove-old" not in ids(at_expiry)
    with_inactive = await search_assets(aconn, embedder, "camping stove", k=10, now=NOW, active_only=False)
    assert "stove-off" in ids(with_inactive)


@pytest.mark.real_model
async def test_filtered_index_search_still_fills_k(db_url: str, embedder: Embedder) -> None:
    from demo.seed.load import ensure_catalogue
    from state.catalogue import _search_statement, vector_literal

    with connect(db_url, autocommit=True) as conn:
        ensure_catalogue(conn, embedder, progress=False)
        # This test's own database: without the btree, a kind filter must go through HNSW.
        conn.execute("DROP INDEX assets_kind_category")
        conn.execute("ANALYZE assets")
    aconn = await connect_async(db_url, autocommit=True)
    try:
        # As on a large catalogue, the planner walks the HNSW index. A quarter of the assets are
        # content: the first 40 graph candidates hold ~10, so k=30 needs the iterative scan.
        await aconn.execute("SET enable_seqscan = off")
        hits = await search_assets(aconn, embedder, "skincare routine", kind="content", k=30)
        params = {"query": vector_literal(embedder.embed_one("x")), "k": 30, "kind": "content", "now": NOW}
        cur = await aconn.execute(b"EXPLAIN " + _search_statement(params).as_bytes(aconn), params)
        plan = " ".join(str(r["QUERY PLAN"]) for r in await cur.fetchall())
        by_category = await search_assets(
            aconn, embedder, "camping gear", category="books", kind="content", k=6
        )
    finally:
        await aconn.close()
    assert "assets_embedding_hnsw" in plan
    assert len(hits) == 30 and {h.kind for h in hits} == {"content"}
    assert hits[0].category == "beauty"
    assert len(by_category) == 6 and {(h.kind, h.category) for h in by_category} == {("content", "books")}


def test_reloading_upserts_by_asset_id(loaded: str, embedder: Embedder, tmp_path: Path) -> None:
    changed = [{**ASSETS[0], "title": "$12 off a camping stove", "value": 12}]
    with connect(loaded, autocommit=True) as conn:
        load_assets(conn, write_json(tmp_path, changed, "changed.json"), embedder, progress=False)
        row = conn.execute("SELECT title, value FROM assets WHERE asset_id = 'stove'").fetchone()
    assert row == {"title": "$12 off a camping stove", "value": Decimal("12")}
    assert count_assets(loaded) == len(ASSETS)


@pytest.mark.parametrize(
    ("change", "row", "field"),
    [
        ({"title": None}, 2, "title"),
        ({"title": ""}, 2, "title"),
        ({"value": "ten"}, 2, "value"),
        ({"value": -1}, 2, "value"),
        ({"valid_until": "next tuesday"}, 2, "valid_until"),
        ({"valid_from": "2026-01-01T00:00:00"}, 2, "valid_from"),
        ({"kind": "voucher"}, 2, "kind"),
        ({"colour": "red"}, 2, "colour"),
    ],
)
def test_a_bad_row_names_row_and_field_and_changes_nothing(
    loaded: str, embedder: Embedder, tmp_path: Path, change: dict[str, Any], row: int, field: str
) -> None:
    good = {**ASSETS[0], "asset_id": "new-1", "title": "A new stove coupon"}
    bad = {**ASSETS[1], "asset_id": "new-2", **change}
    if change.get("title") is None and "title" in change:
        del bad["title"]
    path = write_json(tmp_path, [good, bad])
    with connect(loaded, autocommit=True) as conn, pytest.raises(InputError) as caught:
        load_assets(conn, path, embedder, progress=False)
    assert f"row {row}" in str(caught.value) and repr(field) in str(caught.value)
    assert count_assets(loaded) == len(ASSETS)


def test_coupon_without_value_and_repeated_id_are_refused(
    db_url: str, embedder: Embedder, tmp_path: Path
) -> None:
    no_value = {k: v for k, v in ASSETS[0].items() if k != "value"}
    with connect(db_url, autocommit=True) as conn:
        with pytest.raises(InputError, match=r"row 1: field 'value'"):
            load_assets(conn, write_json(tmp_path, [no_value]), embedder, progress=False)
        with pytest.raises(InputError, match=r"row 2: field 'asset_id'.*repeats row 1"):
            load_assets(conn, write_json(tmp_path, [ASSETS[0], ASSETS[0]]), embedder, progress=False)
    assert count_assets(db_url) == 0


CSV_GOOD = """asset_id,kind,title,description,value,currency,category,tags,active,valid_from,valid_until
stove,coupon,$10 off a camping stove,"A compact stove, boils water fast.",10,USD,outdoor,camping;stove,true,,
guide,content,Pitching a tent,"How to pitch a tent
in the rain.",,,outdoor,,,,2030-01-01T00:00:00Z
"""


async def test_csv_loads_and_searches(db_url: str, embedder: Embedder, tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text(CSV_GOOD)
    with connect(db_url, autocommit=True) as conn:
        assert load_assets(conn, path, embedder, progress=False) == 2
    aconn = await connect_async(db_url, autocommit=True)
    try:
        hits = await search_assets(aconn, embedder, "camping stove", k=2, now=NOW)
    finally:
        await aconn.close()
    assert ids(hits)[0] == "stove"
    assert hits[0].tags == ["camping", "stove"]
    guide = next(h for h in hits if h.asset_id == "guide")
    assert guide.value is None and guide.description == "How to pitch a tent\nin the rain."


def test_csv_bad_row_names_row_and_field(db_url: str, embedder: Embedder, tmp_path: Path) -> None:
    path = tmp_path / "assets.csv"
    path.write_text(CSV_GOOD + "bad,coupon,Broken,Has a bad date,5,USD,home,,true,yesterday,\n")
    with (
        connect(db_url, autocommit=True) as conn,
        pytest.raises(InputError, match=r"row 3: field 'valid_from'"),
    ):
        load_assets(conn, path, embedder, progress=False)
    assert count_assets(db_url) == 0


def test_unknown_file_type_and_bad_json(db_url: str, embedder: Embedder, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.json").write_text("{not json")
    (tmp_path / "c.json").write_text('{"asset_id": "x"}')
    with connect(db_url, autocommit=True) as conn:
        with pytest.raises(InputError, match="unknown file type"):
            load_assets(conn, tmp_path / "a.txt", embedder, progress=False)
        with pytest.raises(InputError, match="not valid JSON"):
            load_assets(conn, tmp_path / "b.json", embedder, progress=False)
        with pytest.raises(InputError, match="JSON list"):
            load_assets(conn, tmp_path / "c.json", embedder, progress=False)


@pytest.mark.real_model
def test_cli_search_has_a_relevance_floor(loaded: str) -> None:
    """Unrelated queries get nothing rather than the k nearest strangers; the floor is shown and settable."""
    from typer.testing import CliRunner

    from mca.cli import app

    env = {"MCA_STATE_URL": loaded, "MCA_OPS_URL": loaded}
    runner = CliRunner()
    related = runner.invoke(app, ["assets", "search", "camping stove", "-k", "7"], env=env)
    assert related.exit_code == 0, related.output
    rows = [line.split() for line in related.output.splitlines()[2:-1]]
    assert "stove" in {row[1] for row in rows} and all(float(row[0]) >= 0.30 for row in rows)
    assert "lipstick" not in related.output  # 7 asked, fewer shown: the floor, not k, ends the list
    assert related.output.splitlines()[-1].startswith("(min score 0.30: ")
    unrelated = runner.invoke(app, ["assets", "search", "quantum chromodynamics lecture"], env=env)
    assert unrelated.output.splitlines() == [
        "(no matching assets)",
        "(min score 0.30: 5 hidden; --min-score 0 shows all)",
    ]
    everything = runner.invoke(
        app, ["assets", "search", "quantum chromodynamics lecture", "--min-score", "0"], env=env
    )
    assert len(everything.output.splitlines()) == 2 + 5  # header, rule, the 5 nearest; no footer at 0
    strict = runner.invoke(
        app, ["assets", "search", "camping stove"], env={**env, "MCA_ASSETS_MIN_SCORE": "0.99"}
    )
    assert strict.output.splitlines()[0] == "(no matching assets)"
    bad = runner.invoke(app, ["assets", "search", "x", "--min-score", "2"], env=env)
    assert bad.exit_code == 2 and "min-score" in bad.output
