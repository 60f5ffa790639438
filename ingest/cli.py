"""`mca sink`: the Kafka → PostgreSQL worker.

Only typer and the standard library load with the CLI; the Kafka client loads inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(sink)


def sink(
    ctx: typer.Context,
    batch_size: Annotated[int, typer.Option(help="Most messages per database transaction.")] = 2000,
    broker_timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker at start.")] = 30.0,
    option: Annotated[
        list[str] | None,
        typer.Option("-X", "--consumer-option", help="A librdkafka consumer setting key=value (repeatable)."),
    ] = None,
) -> None:
    """Consume the events topic into the PostgreSQL state store.

    Offsets are committed after the database commit; SIGTERM or SIGINT stops it gracefully.
    """
    from ingest.sink import Sink, wait_for_broker
    from mca.cli_context import settings_of
    from mca.db import resolve_stores
    from mca.process import configure_logging, thread_stop_on_signals

    configure_logging()
    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    stop = thread_stop_on_signals()
    wait_for_broker(settings.kafka.brokers, broker_timeout)
    extra: dict[str, str] = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="-X")
        extra[key.strip()] = value.strip()
    worker = Sink(
        settings.kafka.brokers,
        settings.kafka.topic,
        settings.kafka.group,
        stores.state_url,
        batch_size=batch_size,
        extra=extra,
    )
    typer.echo(f"sink: {settings.kafka.topic} -> events (group {settings.kafka.group})", err=True)
    stats = worker.run(stop)
    typer.echo(
        f"sink stopped: {stats.consumed} consumed, {stats.inserted} inserted, "
        f"{stats.duplicates} duplicates, {stats.skipped} skipped",
        err=True,
    )
