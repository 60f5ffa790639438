"""`mca mcp --stdio`, `mca dispatch`, `mca approve/reject ID`, `mca holds`, `mca audit export`,
`mca policy check`, `mca switch kill|shadow on|off`, `mca switch status`.
Only typer and the standard library load here; the rest loads in the bodies."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mca.events import OpenEventSink


def _stores(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from mca.cli_context import settings_of
    from mca.db import resolve_stores

    settings = settings_of(ctx)
    return settings, resolve_stores(settings)


def register(app: typer.Typer, *, open_sink: OpenEventSink | None = None) -> None:
    """`open_sink`: how `mca dispatch` opens the event stream it announces actions to (the
    composition root passes the ingest transport's)."""
    audit_app = typer.Typer(help="The guard's audit trail.", no_args_is_help=True)
    policy_app = typer.Typer(help="The action policy (config/policy.yaml).", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")
    app.add_typer(policy_app, name="policy")
    _register_serving(app, open_sink)
    _register_holds(app)
    _register_audit(audit_app)
    _register_policy(policy_app)
    _register_switches(app)


def _register_serving(app: typer.Typer, open_sink: OpenEventSink | None) -> None:
    @app.command("mcp")
    def mcp(
        ctx: typer.Context,
        stdio: Annotated[bool, typer.Option("--stdio", help="Serve MCP on stdin/stdout.")] = False,
        caller: Annotated[str, typer.Option(help="Caller name for the policy's callers: section.")] = "stdio",
    ) -> None:
        """Serve the MCP tools to a desktop assistant over stdio (HTTP is served by `mca serve` at /mcp)."""
        if not stdio:
            typer.echo("use --stdio (streamable HTTP is mounted at /mcp by `mca serve`)", err=True)
            raise typer.Exit(2)
        from mcp_tools.commands import serve_stdio

        settings, stores = _stores(ctx)
        asyncio.run(serve_stdio(settings, stores, caller))

    @app.command("dispatch")
    def dispatch(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then exit.")] = False,
    ) -> None:
        """Deliver outbox rows to providers and release due deferred calls (until Ctrl-C)."""
        from mcp_tools.commands import dispatch as run

        settings, stores = _stores(ctx)
        counts = asyncio.run(run(settings, stores, once=once, open_sink=open_sink))
        if once:
            typer.echo(json.dumps(counts))


def _register_holds(app: typer.Typer) -> None:
    @app.command("approve")
    def approve(
        ctx: typer.Context,
        approval_id: Annotated[int, typer.Argument(help="The held call's approval id.")],
        by: Annotated[str, typer.Option(help="Who approves (recorded).")] = getpass.getuser(),
    ) -> None:
        """Approve a held action: it is judged again (caps, budgets, quiet hours) and sent if allowed."""
        from mcp_tools.commands import decide_hold

        settings, stores = _stores(ctx)
        typer.echo(
            json.dumps(asyncio.run(decide_hold(settings, stores, approval_id, by, approve=True)).to_dict())
        )

    @app.command("reject")
    def reject(
        ctx: typer.Context,
        approval_id: Annotated[int, typer.Argument(help="The held call's approval id.")],
        by: Annotated[str, typer.Option(help="Who rejects (recorded).")] = getpass.getuser(),
    ) -> None:
        """Reject a held action: nothing is sent."""
        from mcp_tools.commands import decide_hold

        settings, stores = _stores(ctx)
        typer.echo(
            json.dumps(asyncio.run(decide_hold(settings, stores, approval_id, by, approve=False)).to_dict())
        )

    @app.command("holds")
    def holds(ctx: typer.Context) -> None:
        """List actions waiting: held for approval or deferred (quiet hours)."""
        from mcp_tools.commands import list_holds

        _, stores = _stores(ctx)
        for row in list_holds(stores):
            typer.echo(json.dumps(row, default=str))


def _register_audit(audit_app: typer.Typer) -> None:
    @audit_app.command("export")
    def audit_export(
        ctx: typer.Context,
        since: Annotated[str, typer.Option(help="ISO date/time, or a span back from now: 24h, 7d.")] = "24h",
        fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
        output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    ) -> None:
        """Export every guard verdict since a time: who, tool, arguments, verdict, reasons, policy version."""
        from mca.db import connect
        from mcp_tools.audit import export, parse_since, rows_since

        start = parse_since(since)
        if fmt not in ("csv", "jsonl"):
            raise typer.BadParameter("csv or jsonl", param_hint="--format")
        _, stores = _stores(ctx)
        with connect(stores.ops_url) as conn:
            if output is None:
                n = export(rows_since(conn, start), sys.stdout, fmt)
            else:
                with output.open("w", newline="") as out:
                    n = export(rows_since(conn, start), out, fmt)
        typer.echo(f"{n} verdicts since {start.isoformat()}", err=True)


def _register_policy(policy_app: typer.Typer) -> None:
    @policy_app.command("check")
    def policy_check(
        ctx: typer.Context,
        path: Annotated[Path | None, typer.Argument(help="Policy file (default: MCA_POLICY_FILE).")] = None,
    ) -> None:
        """Validate a policy file; errors name the line."""
        from mca.cli_context import settings_of
        from mcp_tools.policy import load_policy

        policy = load_policy(path or settings_of(ctx).policy_file)
        typer.echo(f"ok: policy {policy.version_id}")


def _register_switches(app: typer.Typer) -> None:
    switch_app = typer.Typer(
        help="Kill switch and shadow mode, stored in the ops database: every process obeys at once.",
        no_args_is_help=True,
    )
    app.add_typer(switch_app, name="switch")

    for name, help_text in _SWITCHES.items():
        switch_app.command(name, help=help_text)(_flipper(name))

    @switch_app.command("status")
    def status(ctx: typer.Context) -> None:
        """Each switch in force, and where it comes from (ops database or policy file)."""
        from mcp_tools.commands import switch_status

        settings, stores = _stores(ctx)
        for row in asyncio.run(switch_status(settings, stores)):
            typer.echo(json.dumps(row))


_SWITCHES = {
    "kill": "Kill switch: on denies every side-effecting tool and stops dispatch, in every process.",
    "shadow": "Shadow mode: on decides and records everything, dispatches nothing.",
}


def _flipper(name: str):  # type: ignore[no-untyped-def]
    """The `mca switch NAME on|off` command: one body for every switch."""

    def flip(
        ctx: typer.Context,
        state: Annotated[str, typer.Argument(help="on or off.", metavar="STATE")],
        reason: Annotated[str, typer.Option(help="Why (kept in the switch row and the audit log).")],
        by: Annotated[str, typer.Option(help="Who flips it (recorded).")] = getpass.getuser(),
    ) -> None:
        from mcp_tools.commands import set_switch

        if state not in ("on", "off"):
            raise typer.BadParameter("on or off", param_hint="STATE")
        settings, stores = _stores(ctx)
        typer.echo(json.dumps(asyncio.run(set_switch(settings, stores, name, state == "on", by, reason))))

    return flip
