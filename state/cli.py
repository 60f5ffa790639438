"""`mca assets load|search`: the catalogue, validated, embedded and searched by meaning.

Only typer and the standard library at import time; torch and the database load inside the
command bodies, so `mca --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# The relevance floor of `mca assets search`. Over the seed catalogue (230 items, 10
# categories) the best hit of a related query scored 0.34-0.67 (e.g. "hiking boots" 0.67,
# "a good mystery novel" 0.34), that of an unrelated one 0.11-0.29 ("car insurance quote" 0.26,
# "parking ticket appeal" 0.29); in-category 5th hits mostly stay above 0.28. 0.30 hides the
# unrelated and keeps the related; vague wishes ("birthday gift" 0.24) need --min-score lower.
DEFAULT_MIN_SCORE = 0.30

assets_app = typer.Typer(help="The asset catalogue: coupons, rewards, content.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(assets_app, name="assets")


@assets_app.command("load")
def assets_load(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSON list of assets or a CSV with a header row.")],
) -> None:
    """Validate, embed and upsert every asset in FILE (all or nothing)."""
    from mca.cli_context import settings_of
    from mca.db import connect, resolve_stores
    from state.catalogue import load_assets
    from state.embedding import get_embedder

    settings = settings_of(ctx)
    from state.asset_rows import read_asset_file

    read_asset_file(file)  # fail on a bad file before starting servers or loading the model
    stores = resolve_stores(settings)
    embedder = get_embedder(settings.embedding.model, settings.embedding.batch_size)
    with connect(stores.state_url, autocommit=True) as conn:
        count = load_assets(conn, file, embedder, settings.embedding.batch_size)
    typer.echo(f"loaded {count} assets from {file}")


@assets_app.command("search")
def assets_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What you are looking for, in words.")],
    kind: Annotated[str | None, typer.Option(help="coupon | reward | content")] = None,
    category: Annotated[str | None, typer.Option(help="e.g. outdoor, apparel, beauty")] = None,
    max_value: Annotated[float | None, typer.Option("--max-value", help="Upper bound on value.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many results.")] = 5,
    include_inactive: Annotated[bool, typer.Option(help="Also show inactive assets.")] = False,
    min_score: Annotated[
        float,
        typer.Option(
            "--min-score",
            min=0.0,
            max=1.0,
            envvar="MCA_ASSETS_MIN_SCORE",
            help="Hide hits scoring below this (1 = same meaning); 0 shows the k nearest whatever they are.",
        ),
    ] = DEFAULT_MIN_SCORE,
) -> None:
    """Search the catalogue by meaning; prints the best matches above a relevance floor, with scores."""
    import asyncio

    from mca.cli_context import settings_of
    from mca.db import connect_async, resolve_stores
    from state.catalogue import AssetHit, format_hits, search_assets
    from state.embedding import get_embedder

    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    embedder = get_embedder(settings.embedding.model, settings.embedding.batch_size)

    async def run() -> list[AssetHit]:
        conn = await connect_async(stores.state_url, autocommit=True)
        try:
            return await search_assets(
                conn, embedder, query, kind=kind, category=category, max_value=max_value, k=k,
                active_only=not include_inactive,
            )  # fmt: skip
        finally:
            await conn.close()

    typer.echo(format_hits(asyncio.run(run()), min_score=min_score))
