"""The sample-ratio check reads the group sizes the triggers file configures.

Customers are assigned with non-default shares (a 20% holdout, a 30% default control and 40%
on one rule); `mca report uplift`, GET /reports/uplift and the console's experiments page check
the groups against those shares and stay quiet, and the same data checked against the wrong
shares (a flag override, or the defaults) warns.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.shares import configured_shares
from mca.app import create_app
from mca.cli import app as cli_app
from mca.db import Stores
from mca.settings import Settings
from mca.testing.triggers import triggers_without_experiments
from measure.assign import Shares, assign
from measure.web import extension

SALT = "shares-test"
HOLDOUT, CONTROL, CHURN_CONTROL = 0.2, 0.3, 0.4
CUSTOMERS = 1500
DECIDED = datetime.now(UTC) - timedelta(days=10)


def _triggers(folder: Path) -> Path:
    path = triggers_without_experiments(folder)
    doc = yaml.safe_load(path.read_text())
    doc["experiments"] = {"salt": SALT, "holdout": HOLDOUT, "control": CONTROL}
    for rule in doc["rules"]:
        if rule["name"] == "churn_risk":
            rule["control"] = CHURN_CONTROL
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def assigned(db_url: str, tmp_path: Path) -> Settings:
    """Exposures of two triggers, each customer in the group the configured shares give."""
    rows = []
    for trigger, control in (("churn_risk", CHURN_CONTROL), ("big_purchase", CONTROL)):
        for n in range(CUSTOMERS):
            user = f"u{n}"
            group = assign(user, trigger, salt=SALT, holdout=HOLDOUT, control=control).group
            props = {"decision_id": f"{trigger}-{n}", "trigger": trigger, "experiment_id": "e",
                     "experiment_group": group.value, "window_s": 7 * 86400}  # fmt: skip
            rows.append((f"dec-{trigger}-{n}", user, DECIDED, json.dumps(props)))
    with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
            "VALUES (%s, %s, 'decision_recorded', %s, %s)",
            rows,
        )
    triggers = _triggers(tmp_path / "cfg")
    return Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path / "data", triggers_file=triggers)


def _warned(rows: list[dict[str, Any]]) -> dict[str, bool]:
    return {r["trigger"]: r["srm_warning"] is not None for r in rows}


def test_triggers_file_shares_reach_the_report(assigned: Settings) -> None:
    shares = configured_shares(assigned)()
    assert shares.of("churn_risk") == (HOLDOUT, CHURN_CONTROL)
    assert shares.of("big_purchase") == (HOLDOUT, CONTROL)


def test_cli_checks_against_the_configured_shares_and_flags_override(assigned: Settings) -> None:
    def run(*flags: str) -> dict[str, bool]:
        result = CliRunner().invoke(cli_app, ["report", "uplift", "--format", "json", *flags], obj=assigned)
        assert result.exit_code == 0, result.output
        return _warned(json.loads(result.output))

    assert run() == {"churn_risk": False, "big_purchase": False}
    # Wrong shares: the defaults (5% / 10%) are far from what the data was assigned with.
    assert run("--holdout", "0.05", "--control", "0.10") == {"churn_risk": True, "big_purchase": True}
    # One control for every trigger: right for big_purchase, wrong for churn_risk.
    assert run("--control", str(CONTROL)) == {"churn_risk": True, "big_purchase": False}
    bad = CliRunner().invoke(cli_app, ["report", "uplift", "--holdout", "5"], obj=assigned)
    assert bad.exit_code != 0 and "holdout must be a fraction" in bad.output


def test_api_checks_against_the_configured_shares(assigned: Settings) -> None:
    stores = Stores(state_url=assigned.state_url, ops_url=assigned.ops_url)
    configured = create_app(
        assigned, stores, extensions=[extension(assigned, stores, shares=configured_shares(assigned))]
    )
    with TestClient(configured) as client:
        got = client.get("/reports/uplift")
        assert got.status_code == 200, got.text
        assert _warned(got.json()["rows"]) == {"churn_risk": False, "big_purchase": False}
        over = client.get("/reports/uplift", params={"holdout": 0.05, "control": 0.1}).json()
        assert _warned(over["rows"]) == {"churn_risk": True, "big_purchase": True}
    # Without the triggers file's shares the check falls back to the defaults, and warns here.
    with TestClient(create_app(assigned, stores, extensions=[extension(assigned, stores)])) as client:
        rows = client.get("/reports/uplift").json()["rows"]
        assert _warned(rows) == {"churn_risk": True, "big_purchase": True}


def test_default_app_wires_the_triggers_file_shares(assigned: Settings) -> None:
    stores = Stores(state_url=assigned.state_url, ops_url=assigned.ops_url)
    app = create_app(assigned, stores)
    with TestClient(app) as client:
        got = client.get("/reports/uplift")
        assert got.status_code == 200, got.text
        assert _warned(got.json()["rows"]) == {"churn_risk": False, "big_purchase": False}


def test_shares_refuse_a_bad_override() -> None:
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        Shares().overridden(holdout=0.9)
