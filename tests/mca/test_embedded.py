"""The embedded server's life cycle and the shell commands around it, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from mca.db import resolve_stores
from mca.embedded import EmbeddedPostgres
from mca.settings import Settings

MCA = [sys.executable, "-m", "mca"]


def run_mca(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Start from the caller's environment minus any mca settings, so only what the test says counts.
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCA_") and k != "GROQ_API_KEY"}
    full_env = {**base, "MCA_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run([*MCA, *args], env=full_env, capture_output=True, text=True, timeout=120)


def test_up_down_status_and_crash_recovery(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "data")
    url = server.up()
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone()
        status = server.status()
        assert status.running and status.url == url
        # A crash: the postmaster dies without cleaning up, postmaster.pid stays behind.
        assert status.pid is not None
        postmaster = psutil.Process(status.pid)
        os.kill(status.pid, signal.SIGKILL)
        postmaster.wait(timeout=30)
        assert (server.pgdata / "postmaster.pid").exists()
        assert not server.status().running
        assert server.up() == url  # same port, same data
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1 AS one").fetchone() == (1,)
    finally:
        server.down()
    assert not server.status().running
    assert server.down() is False


def test_stale_pid_file_pointing_at_another_process(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "data")
    server.up()
    server.down()
    # After a reboot the old pid may belong to something else entirely: here, this test process.
    (server.pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{server.pgdata}\n")
    try:
        url = server.up()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 2").fetchone() == (2,)
    finally:
        server.down()


def test_external_urls_start_nothing(tmp_path: Path, db_url: str) -> None:
    data_dir = tmp_path / "never-created"
    stores = resolve_stores(Settings(state_url=db_url, ops_url=db_url, data_dir=data_dir))
    assert stores.state_url == db_url and stores.shared
    assert not data_dir.exists()


@pytest.mark.slow
def test_cli_db_psql_and_config(tmp_path: Path) -> None:
    data = tmp_path / "cli-data"
    try:
        up = run_mca(data, "db", "up")
        assert up.returncode == 0, up.stderr
        assert "running" in up.stdout
        migrate = run_mca(data, "migrate")
        assert migrate.returncode == 0, migrate.stderr
        assert "applied state/060_unified_context.sql" in migrate.stdout
        psql = run_mca(data, "psql", "-c", "SELECT count(*) FROM unified_context")
        assert psql.returncode == 0, psql.stderr
        assert "count" in psql.stdout and "0" in psql.stdout
        assert "running" in run_mca(data, "db", "status").stdout
    finally:
        down = run_mca(data, "db", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert "stopped" in run_mca(data, "db", "status").stdout


def test_config_masks_secrets(tmp_path: Path) -> None:
    out = run_mca(
        tmp_path,
        "config",
        env={
            "MCA_STATE_URL": "postgresql://app:s3cret@db.internal:5432/mca",
            "GROQ_API_KEY": "gsk_live_abcdef",
            "MCA_API_KEYS": '{"writekey-123456": ["ingest"]}',
        },
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["state_url"] == "postgresql://app:***@db.internal:5432/mca"
    assert shown["groq_api_key"] == "********"
    assert "s3cret" not in out.stdout and "gsk_live" not in out.stdout and "writekey-123456" not in out.stdout


def test_config_shows_nothing_of_any_secret(tmp_path: Path) -> None:
    """Not even a prefix: map keys (API keys, MCP tokens), list items and URL query credentials too."""
    secrets = {
        "MCA_API_KEYS": ("Zq7-in-2m9x", '{"Zq7-in-2m9x": ["ingest"], "Yv2-rd-4h7z": ["read"]}'),
        "MCA_MCP_TOKENS": ("Xw9-mcp-k5r", '{"Xw9-mcp-k5r": "desktop"}'),
        "MCA_WEBHOOK_SECRETS": ("whsec_Qk4w8e7", '["whsec_Qk4w8e7"]'),
        "MCA_OPS_URL": ("Pj5-pq-0x19", "postgresql://ops@db:5432/ops?sslmode=require&password=Pj5-pq-0x19"),
        "MCA_TWILIO_AUTH_TOKEN": ("Tb3-tw-88q1", "Tb3-tw-88q1"),
    }
    out = run_mca(tmp_path, "config", env={name: value for name, (_, value) in secrets.items()})
    assert out.returncode == 0, out.stderr
    for secret, _ in secrets.values():
        assert secret[:3] not in out.stdout and secret[-4:] not in out.stdout, secret
    shown = json.loads(out.stdout)
    assert shown["api_keys"] == {"******** #1": ["ingest"], "******** #2": ["read"]}
    assert shown["mcp_tokens"] == {"******** #1": "desktop"}
    assert shown["webhook_secrets"] == ["********"]
    assert shown["twilio_auth_token"] == "********" and shown["braze_api_key"] is None
    assert shown["ops_url"] == "postgresql://ops@db:5432/ops?sslmode=require&password=***"


def test_a_malformed_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    bad_json = run_mca(tmp_path, "config", env={"MCA_API_KEYS": "{bad"})
    assert bad_json.returncode == 2 and bad_json.stdout == ""
    (line,) = bad_json.stderr.strip().splitlines()
    assert (
        line
        == "error: MCA_API_KEYS: not valid JSON (Expecting property name enclosed in double quotes"
        + (" at character 1)")
    )
    # A well-formed map of the wrong shape: named, and the key (a credential) is not repeated.
    wrong_shape = run_mca(tmp_path, "db", "status", env={"MCA_API_KEYS": '{"sekrit-key": "ingest"}'})
    assert wrong_shape.returncode == 2
    assert wrong_shape.stderr.strip().splitlines() == [
        "error: MCA_API_KEYS.********: Input should be a valid list"
    ]
    two = run_mca(tmp_path, "config", env={"MCA_HTTP_PORT": "eighty", "MCA_BRAIN": "gpt"})
    assert two.returncode == 2
    assert [line.split(":")[1].strip() for line in two.stderr.strip().splitlines()] == [
        "MCA_HTTP_PORT", "MCA_BRAIN"
    ]  # fmt: skip


@pytest.mark.slow
def test_psql_runs_every_command_in_order_and_says_when_the_server_is_new(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere" / ".mca"
    try:
        first = run_mca(data, "psql", "-At", "-c", "SELECT 'first'", "-c", "SELECT 'second'")
        assert first.returncode == 0, first.stderr
        assert first.stdout.split() == ["first", "second"]
        assert first.stderr.splitlines()[0].startswith(
            f"mca: no embedded server in {data}: creating a new, empty one"
        )
        run_mca(data, "db", "down")
        again = run_mca(data, "psql", "-c", "SELECT 1")
        assert again.stderr.splitlines()[0] == f"mca: starting the embedded server with the data in {data}"
        running = run_mca(data, "psql", "-c", "SELECT 1")
        assert running.returncode == 0 and running.stderr == ""  # a running server: nothing to say
    finally:
        run_mca(data, "db", "down")


def test_unreachable_state_url_is_one_line(tmp_path: Path) -> None:
    out = run_mca(
        tmp_path,
        "migrate",
        env={
            "MCA_STATE_URL": "postgresql://u:pw@127.0.0.1:1/x",
            "MCA_OPS_URL": "postgresql://u:pw@127.0.0.1:1/x",
        },
    )
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: cannot reach postgresql://u:***@127.0.0.1:1/x")
    assert len(out.stderr.strip().splitlines()) == 1
