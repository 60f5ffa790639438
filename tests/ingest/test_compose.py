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


def mca_commands(compose: dict[str, Any]) -> dict[str, str]:
    """service -> the mca subcommand it runs."""
    out = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[:1] == ["mca"]:
            out[name] = command[1]
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
    assert services["migrate"]["command"] == ["mca", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["risingwave"]["condition"] == "service_healthy"
    for name in ("serve", "trigger", "agent", "dispatch"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = services["serve"]["environment"]
    assert env["MCA_STATE_URL"].endswith("@risingwave:4566/dev") and env["MCA_TRANSPORT"] == "kafka"


def test_every_mca_command_exists() -> None:
    runner = CliRunner()
    missing = []
    doc = yaml.safe_load(COMPOSE.read_text())
    for service, command in sorted(mca_commands(doc).items()):
        result = runner.invoke(app, [command, "--help"])
        if result.exit_code != 0:
            missing.append(f"{service}: mca {command}")
    assert not missing, f"compose runs commands the CLI lacks: {missing}"


def test_dockerfile_copies_what_the_services_need() -> None:
    dockerfile = (Path(COMPOSE).parent / "Dockerfile").read_text()
    for folder in ("mca", "ingest", "agent", "mcp_tools", "sql", "config", "prompts"):
        assert f"COPY {folder} ./{folder}" in dockerfile
