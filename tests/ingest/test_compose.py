"""The compose stack cannot run here (no Docker): check its structure against the compose
specification's rules that matter, and that every `mca <command>` it runs exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mca.cli import app
from mca.settings import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "compose" / "docker-compose.yml"
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
INFRA = ("redpanda", "risingwave", "postgres", "minio")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def mca_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """service -> the mca arguments it runs (subcommand and options)."""
    out = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[:1] == ["mca"]:
            out[name] = command[1:]
    return out


def test_structure(compose: dict[str, Any]) -> None:
    assert set(k for k in compose if not k.startswith("x-")) <= TOP_LEVEL
    services = compose["services"]
    for name in (*INFRA, "migrate", "serve", "trigger", "agent", "dispatch"):
        assert name in services, name
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert spec["condition"] in CONDITIONS, (name, dep)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in (compose.get("volumes") or {}), f"{name}: undeclared volume {source}"
        health = service.get("healthcheck")
        if health is not None:
            test = health["test"]
            assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"), name
    for name in (*INFRA, "serve"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_risingwave_is_pinned_at_2_6_or_later(compose: dict[str, Any]) -> None:
    image = compose["services"]["risingwave"]["image"]
    match = re.fullmatch(r"risingwavelabs/risingwave:v(\d+)\.(\d+)\.(\d+)", image)
    assert match, f"not a pinned version: {image}"
    assert (int(match[1]), int(match[2])) >= (2, 6)
    assert "standalone" in compose["services"]["risingwave"]["command"]


def test_migrate_runs_once_before_the_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    # It waits for a store that is still starting rather than failing once and for all.
    command = services["migrate"]["command"]
    assert command[:3] == ["mca", "migrate", "--wait"] and float(command[3]) >= 60
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["risingwave"]["condition"] == "service_healthy"
    for name in ("serve", "trigger", "agent", "dispatch"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redpanda"]["condition"] == "service_healthy"
    env = services["serve"]["environment"]
    assert env["MCA_STATE_URL"].endswith("@risingwave:4566/dev") and env["MCA_TRANSPORT"] == "kafka"


def test_every_mca_command_exists() -> None:
    runner = CliRunner()
    missing = []
    doc = yaml.safe_load(COMPOSE.read_text())
    for service, command in sorted(mca_commands(doc).items()):
        # The options are parsed before the eager --help runs: an unknown one fails here.
        result = runner.invoke(app, [*command, "--help"])
        if result.exit_code != 0:
            missing.append(f"{service}: mca {command}")
    assert not missing, f"compose runs commands the CLI lacks: {missing}"


def test_dockerfile_copies_what_the_services_need() -> None:
    dockerfile = (Path(COMPOSE).parent / "Dockerfile").read_text()
    for folder in ("mca", "ingest", "agent", "mcp_tools", "sql", "config", "prompts"):
        assert f"COPY {folder} ./{folder}" in dockerfile


def test_the_image_installs_the_cpu_build_of_torch() -> None:
    dockerfile = (Path(COMPOSE).parent / "Dockerfile").read_text()
    match = re.search(r"^RUN pip install .*torch==[\d.]+.*$", dockerfile, re.MULTILINE)
    assert match, "the Dockerfile no longer installs torch before the package"
    assert "--index-url" in match[0] and "TORCH_INDEX_URL" in match[0]
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert dockerfile.index(match[0]) < dockerfile.index("RUN pip install --no-cache-dir .")


def test_the_example_env_opens_ingest_and_mcp() -> None:
    """Copied as it is, the example lets a client in on /ingest and /mcp, and says to change it."""
    from mca.settings import Settings

    example = Path(COMPOSE).parent / "mca.env.example"
    text = example.read_text()
    assert "MUST BE CHANGED" in text
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert any("ingest" in permissions for permissions in settings.api_keys.values())
    assert settings.mcp_tokens, "with no MCP token /mcp refuses everyone"
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["x-mca"]["env_file"][0]["path"] == "mca.env"
