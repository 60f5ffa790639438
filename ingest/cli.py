"""`mca serve` (the HTTP service) and `mca sink` (the Kafka → PostgreSQL worker).

Only typer and the standard library load with the CLI; the app and Kafka client load
inside the commands.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(sink)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default MCA_HTTP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default MCA_HTTP_PORT).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the HTTP service: POST /ingest, /healthz, /readyz, OpenAPI docs at /docs.

    With no credentials configured (open mode) it listens on loopback only, whatever --host says.
    """
    import uvicorn

    from mca.app import create_app, discover_extensions, gc_tuning
    from mca.auth import bind_host
    from mca.cli import settings_of
    from mca.db import resolve_stores

    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    # gc_tuning goes last: its lifespan freezes what every other part set up at start.
    application = create_app(settings, stores, [*discover_extensions(settings, stores), gc_tuning()])
    bound, notice = bind_host(host or settings.http_host, application.state.auth)
    if notice:
        typer.secho(notice, fg=typer.colors.YELLOW, err=True)
    uvicorn.run(
        application,
        host=bound,
        port=settings.http_port if port is None else port,
        access_log=access_log,
        log_level="info",
    )


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
    from mca.cli import settings_of
    from mca.db import resolve_stores

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_of(ctx)
    stores = resolve_stores(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    wait_for_broker(settings.kafka_brokers, broker_timeout)
    extra: dict[str, str] = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="-X")
        extra[key.strip()] = value.strip()
    worker = Sink(
        settings.kafka_brokers,
        settings.kafka_topic,
        settings.kafka_group,
        stores.state_url,
        batch_size=batch_size,
        extra=extra,
    )
    typer.echo(f"sink: {settings.kafka_topic} -> events (group {settings.kafka_group})", err=True)
    stats = worker.run(stop)
    typer.echo(
        f"sink stopped: {stats.consumed} consumed, {stats.inserted} inserted, "
        f"{stats.duplicates} duplicates, {stats.skipped} skipped",
        err=True,
    )
