"""`mca migrate --wait`: compose starts it while RisingWave is still starting; it must wait, not fail."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mca.db import wait_reachable
from mca.embedded import EmbeddedPostgres
from mca.errors import DatabaseUnreachable
from mca.net import free_port


def _env(url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    return {**base, "MCA_STATE_URL": url, "MCA_OPS_URL": url}


@pytest.mark.slow
def test_migrate_waits_for_a_server_that_starts_later(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "late", port=free_port())
    server.up()  # initialise once, then stop: the port is known and nothing listens on it
    url = server.url()
    server.down()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mca", "migrate", "--wait", "120"],
        env=_env(url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stderr = proc.stderr
        assert stderr is not None
        lines: queue.Queue[str] = queue.Queue()

        def read_stderr() -> None:
            for line in stderr:
                lines.put(line)

        threading.Thread(target=read_stderr, daemon=True).start()
        first = lines.get(timeout=60)  # the first refusal, said on stderr
        assert first.startswith("waiting for postgresql://postgres@127.0.0.1:"), first
        server.up()
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, stdout
        assert "applied ops/150_pending_actions.sql" in stdout
    finally:
        proc.kill()
        server.down()


def test_a_server_that_will_not_come_gives_up_at_the_deadline() -> None:
    waits: list[str] = []
    url = f"postgresql://u:pw@127.0.0.1:{free_port()}/x"
    with pytest.raises(DatabaseUnreachable, match=r"cannot reach postgresql://u:\*\*\*@127\.0\.0\.1"):
        wait_reachable(url, timeout_s=1.0, on_wait=waits.append)
    assert waits and all("u:***@" in line and "pw" not in line for line in waits)


def test_an_error_waiting_cannot_fix_fails_at_once(db_url: str) -> None:
    """A missing database (3D000) is not a server starting: no retry, even with a long wait."""
    waits: list[str] = []
    missing = db_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(DatabaseUnreachable, match="no_such_database"):
        wait_reachable(missing, timeout_s=600.0, on_wait=waits.append)
    assert waits == []
