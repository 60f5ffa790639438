"""Wall time of `mca report uplift` over a large stream, beside a full scan of the same table.

    .venv/bin/python bench/bench_uplift.py                          # 1,000,000 events, 100,000 actions
    .venv/bin/python bench/bench_uplift.py --events 100000 --actions 10000 --rounds 3

The world is generated inside the benchmark server with `generate_series` (seconds, not the
seed programme's minutes) into its own database, reused by later runs of the same size: one
decision per customer 8 to 27 days ago (every window closed), one action per decision
(treatment: a coupon sent, with its delivery receipt; control and holdout: withheld),
purchases spread over 35 days (one in ten carrying its coupon code), page views for the rest.
The figure is the command itself (typer's CliRunner on `mca.cli`: settings, the triggers
file's shares, the query over the attribution views, the statistics, the JSON), taking turns
with the floor: `SELECT count(*) FROM events` on its own connection, the least any report
over the stream must read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import psycopg
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import bench_database
from report import Comparison, interleaved, print_table, record

from mca.cli import app as cli_app
from mca.settings import Settings

GROUP = """CASE WHEN abs(hashtext('g' || i)) %% 1000 < 50 THEN 'holdout'
                WHEN abs(hashtext('g' || i)) %% 1000 < 145 THEN 'control' ELSE 'treatment' END"""
SEED = [
    # one decision per customer: the intent-to-treat exposure
    f"""INSERT INTO events (event_id, user_id, event_type, ts, source, properties)
    SELECT 'dec-' || i, 'u' || i, 'decision_recorded', now() - (8 + i %% 20) * interval '1 day', 'mca',
           jsonb_build_object('decision_id', 'd' || i, 'trigger', 'churn_risk', 'goal', 'retention',
                              'brain', 'rules', 'experiment_id', 'exp-bench', 'segment', 's' || i %% 4,
                              'experiment_group', {GROUP}, 'window_s', 604800)
    FROM generate_series(1, %(actions)s) AS i""",
    # one action per decision: a coupon for treatment, withheld for the others
    f"""INSERT INTO events (event_id, user_id, event_type, ts, source, value, properties)
    SELECT 'act-' || i, 'u' || i,
           CASE WHEN {GROUP} = 'treatment' THEN 'offer_sent' ELSE 'action_withheld' END,
           now() - (8 + i %% 20) * interval '1 day' + interval '1 minute', 'mca', 10,
           jsonb_build_object('decision_id', 'd' || i, 'trigger', 'churn_risk', 'goal', 'retention',
                              'experiment_id', 'exp-bench', 'experiment_group', {GROUP}, 'call_id', i,
                              'coupon_code', 'MCA-' || i, 'cost', 10, 'asset', 'a' || i %% 10,
                              'channel', 'email', 'window_s', 604800)
    FROM generate_series(1, %(actions)s) AS i""",
    # the delivery receipt of every coupon sent
    """INSERT INTO events (event_id, user_id, event_type, ts, source, properties)
    SELECT 'rcpt-' || event_id, user_id, 'message_delivered', ts + interval '1 minute', 'receipts',
           jsonb_build_object('decision_id', properties ->> 'decision_id',
                              'call_id', (properties ->> 'call_id')::int)
    FROM events WHERE event_type = 'offer_sent'""",
    # purchases over 35 days, one in ten with its customer's coupon
    """INSERT INTO events (event_id, user_id, event_type, ts, source, value, properties)
    SELECT 'buy-' || i, 'u' || (1 + i %% %(actions)s), 'purchase',
           now() - (i %% 35) * interval '1 day' - (i %% 86400) * interval '1 second', 'bench',
           10 + i %% 90,
           CASE WHEN i %% 10 = 0 THEN jsonb_build_object('coupon_code', 'MCA-' || (1 + i %% %(actions)s))
                ELSE '{}'::jsonb END
    FROM generate_series(1, %(purchases)s) AS i""",
    # page views for the rest of the stream
    """INSERT INTO events (event_id, user_id, event_type, ts, source, properties)
    SELECT 'page-' || i, 'u' || (1 + i %% %(actions)s), 'page',
           now() - (i %% 35) * interval '1 day', 'bench', '{}'::jsonb
    FROM generate_series(1, %(events)s - (SELECT count(*) FROM events)) AS i""",
    "ANALYZE events",
]


def world(events: int, actions: int) -> str:
    url = bench_database(f"uplift_{events}e_{actions}a", fresh=False)
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM events").fetchone()
        if have is not None and have[0] == events:
            return url
        conn.execute("TRUNCATE events")
        params = {"events": events, "actions": actions, "purchases": events // 5}
        for statement in SEED:
            conn.execute(statement, params)
        counted = conn.execute("SELECT count(*) FROM events").fetchone()
        assert counted is not None and counted[0] == events, counted
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.events < 2.2 * args.actions + args.events // 5:
        parser.error("--events must leave room for decisions, actions, receipts and purchases")

    url = world(args.events, args.actions)
    settings = Settings(state_url=url, ops_url=url, data_dir=Path(".mca-bench"))
    runner = CliRunner()
    rows: list[object] = []

    def uplift() -> None:
        result = runner.invoke(cli_app, ["report", "uplift", "--format", "json"], obj=settings)
        if result.exit_code != 0:
            raise SystemExit(f"mca report uplift failed: {result.output}")
        rows[:] = json.loads(result.output)

    with psycopg.connect(url, autocommit=True) as floor_conn:
        samples = interleaved(
            {
                "uplift": uplift,
                "count": lambda: floor_conn.execute("SELECT count(*) FROM events").fetchone(),
            },
            args.rounds,
        )
    (only,) = rows
    assert isinstance(only, dict)
    print(f"report: {only['trigger']}, customers {only['customers']}, srm warning {only['srm_warning']}")
    figure, floor = samples["uplift"], samples["count"]
    path = f"mca report uplift, {args.events:,} events / {args.actions:,} actions, p50 of {args.rounds}"
    out = [Comparison("uplift", path, figure.median, floor.median, "SELECT count(*) FROM events p50")]
    print_table("mca report uplift (wall time, ms)", out)
    record(out)


if __name__ == "__main__":
    main()
