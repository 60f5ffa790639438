"""`mca dispatch` SIGKILLed mid-burst, then restarted: what reached the provider, per key.

The dispatcher runs as a real subprocess (`python -m mca dispatch`). A row in flight when it
dies is still `sending`; once its lease runs out the restarted dispatcher sends it again: at
least once, by design. What must hold is that the second send carries the same key, so a
provider that honours keys acts once:
- webhook: a Standard Webhooks receiver (here, a local one that is slow on purpose, so rows are
  in flight at the kill) deduplicates by `webhook-id`; every re-sent request must carry its
  row's key and the same bytes;
- log: the provider deduplicates itself (`log_deliveries`): no key is logged twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mca.db import Stores
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import count, wait_until
from mca.testing.http import serve_in_thread
from mcp_tools.guard import CallContext
from mcp_tools.runtime import Runtime

ROWS = 40
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A webhook receiver that dedupes by webhook-id, as Standard Webhooks asks receivers to.

    It answers the first `ANSWERED` requests at once, then stops answering until `released` is
    set (after the kill): whatever the dispatcher sent from then on is in flight when it dies."""

    ANSWERED = 5

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.effects: Counter[str] = Counter()
        self.released = threading.Event()

    def holding(self) -> bool:
        """True once a request is held: the dispatcher is mid-burst with a row in flight."""
        return len(self.requests) > self.ANSWERED

    async def handle(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the dispatcher was killed while sending: nothing arrived
            return Response(status_code=499)
        key = request.headers["webhook-id"]
        self.requests.append((key, body))
        if key not in {k for k, _ in self.requests[:-1]}:
            self.effects[key] += 1
        if len(self.requests) > self.ANSWERED and not self.released.is_set():
            await asyncio.to_thread(self.released.wait, 60)
        return Response(status_code=204)


@contextmanager
def receiving() -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hooks", receiver.handle, methods=["POST"])])
    with serve_in_thread(app, lifespan="off") as port:
        try:
            yield receiver, f"http://127.0.0.1:{port}/hooks"
        finally:
            receiver.released.set()  # no held request outlives the test


async def queue_rows(settings: Settings, stores: Stores) -> None:
    async with Runtime(settings, stores).acquire() as deps:
        for i in range(ROWS):
            outcome = await deps.service.act(
                "update_crm",
                {"user_id": "u_ok", "fields": {"next_best_action": f"call-{i}"}, "reason": "crash test"},
                CallContext("agent", "default", f"crash-{i}"),
            )
            assert outcome.status == "allowed", outcome


def start_dispatcher(world: str, policy: Path, tmp: Path, **env: str) -> subprocess.Popen[str]:
    child_env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "MCA_STATE_URL": world,
        "MCA_OPS_URL": world,
        "MCA_POLICY_FILE": str(policy),
        "MCA_DATA_DIR": str(tmp / "data"),
        "MCA_DISPATCH_LEASE_S": "1",
        "MCA_DISPATCH_POLL_S": "0.05",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mca", "dispatch"],
        cwd=PROJECT_ROOT,
        env=child_env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def kill(child: subprocess.Popen[str], sig: signal.Signals) -> str:
    child.send_signal(sig)
    _, err = child.communicate(timeout=30)
    return err


def crash_and_recover(
    world: str, policy: Path, tmp: Path, progress: Any, after_kill: Any = None, **env: str
) -> tuple[str, str]:
    """Run a dispatcher until `progress()` says it is mid-burst, SIGKILL it (then `after_kill()`),
    run a second one until every row is delivered; the two stderr logs."""
    first = start_dispatcher(world, policy, tmp, **env)
    try:
        wait_until(progress, "the first dispatcher to be mid-burst", timeout_s=60)
        assert first.poll() is None
        first_log = kill(first, signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
    assert count(world, "outbox", "status = 'delivered'") < ROWS, "the kill must land mid-burst"
    if after_kill is not None:
        after_kill()
    second = start_dispatcher(world, policy, tmp, **env)
    try:
        wait_until(lambda: count(world, "outbox", "status = 'delivered'") == ROWS, "every row delivered", 90)
        second_log = kill(second, signal.SIGTERM)
    finally:
        if second.poll() is None:
            second.kill()
    return first_log, second_log


@pytest.mark.timeout(240)
def test_webhook_redelivery_after_sigkill_carries_the_same_key(
    tool_settings: Settings, tool_stores: Stores, world: str, policy_path: Path, tmp_path: Path
) -> None:
    asyncio.run(queue_rows(tool_settings, tool_stores))
    with receiving() as (receiver, url):
        env = {
            "MCA_DISPATCH_PROVIDER": "webhook",
            "MCA_DISPATCH_WEBHOOK_URL": url,
            "MCA_DISPATCH_WEBHOOK_SECRET": SecretStr(SECRET).get_secret_value(),
        }
        crash_and_recover(world, policy_path, tmp_path, receiver.holding, receiver.released.set, **env)
        sent = list(receiver.requests)
    keys = {str(r) for r in _keys(world)}
    per_key = Counter(k for k, _ in sent)
    resent = {k: n for k, n in per_key.items() if n > 1}
    print(f"\nwebhook crash test: rows {ROWS}, requests {len(sent)}, re-sent keys {len(resent)}, "
          f"keys acted on twice {sum(1 for n in receiver.effects.values() if n > 1)}")  # fmt: skip
    assert set(per_key) == keys, "every row reached the receiver under its own outbox key"
    assert resent, "rows were in flight at the kill and were sent again after the lease ran out"
    for key in resent:
        bodies = {body for k, body in sent if k == key}
        assert len(bodies) == 1, "a re-sent request is byte-identical to the first"
    assert all(n == 1 for n in receiver.effects.values()) and len(receiver.effects) == ROWS


@pytest.mark.timeout(240)
def test_log_provider_logs_each_key_once_across_a_sigkill(
    tool_settings: Settings, tool_stores: Stores, world: str, policy_path: Path, tmp_path: Path
) -> None:
    asyncio.run(queue_rows(tool_settings, tool_stores))
    logs = crash_and_recover(
        world,
        policy_path,
        tmp_path,
        lambda: count(world, "log_deliveries") >= 5,
        MCA_DISPATCH_PROVIDER="log",
    )
    logged = Counter(
        json.loads(line.split(" deliver ", 1)[1])["idempotency_key"]
        for text in logs
        for line in text.splitlines()
        if " deliver {" in line
    )
    print(f"\nlog crash test: rows {ROWS}, lines {sum(logged.values())}, keys logged twice "
          f"{sum(1 for n in logged.values() if n > 1)}")  # fmt: skip
    assert set(logged) <= {str(k) for k in _keys(world)} and count(world, "log_deliveries") == ROWS
    assert journal_keys(world) == {str(k) for k in _keys(world)}, "every delivery is in the journal"
    assert all(n == 1 for n in logged.values())


def _keys(url: str) -> list[Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT idem_key FROM outbox").fetchall()]


def journal_keys(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT line->>'idempotency_key' FROM log_deliveries").fetchall()
        return {r[0] for r in rows}
