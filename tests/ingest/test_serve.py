"""`mca serve` as a real uvicorn process: end to end, and schemathesis against its OpenAPI."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import psycopg
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.ingest.helpers import Served, serve, stop_process

schemathesis.serializer.alias(
    ["application/cloudevents+json", "application/cloudevents-batch+json"], "application/json"
)


def test_end_to_end_over_http(module_db_url: str) -> None:
    served = serve(module_db_url)
    try:
        event = {
            "type": "track",
            "event": "purchase",
            "userId": "e2e",
            "messageId": "e2e-1",
            "properties": {"revenue": 3},
        }
        first = httpx.post(f"{served.base_url}/ingest", json=event, timeout=10)
        again = httpx.post(f"{served.base_url}/ingest", json=event, timeout=10)
        assert first.status_code == 202 and first.json()["accepted"] == 1
        assert again.status_code == 202 and again.json()["duplicates"] == 1
        assert httpx.get(f"{served.base_url}/docs", timeout=10).status_code == 200
        with psycopg.connect(module_db_url) as conn:
            row = conn.execute("SELECT user_id, value FROM events WHERE event_id = 'e2e-1'").fetchone()
        assert row is not None and row[0] == "e2e" and float(row[1]) == 3
    finally:
        # uvicorn re-raises the SIGTERM it handled once shut down, hence -SIGTERM.
        assert stop_process(served.process) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in served.log_text()


def test_open_mode_serves_loopback_only_and_says_so(module_db_url: str) -> None:
    import psutil

    served = serve(module_db_url, host="0.0.0.0")
    try:
        listening = {
            c.laddr.ip
            for c in psutil.Process(served.process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {"127.0.0.1"}, listening
        assert "serving on 127.0.0.1 only instead of 0.0.0.0" in served.log_text()
    finally:
        stop_process(served.process)


def test_schemathesis_finds_no_server_errors(served: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{served.base_url}/openapi.json")
    failures: list[str] = []
    statuses: set[int] = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(base_url=served.base_url, timeout=10)
                statuses.add(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.media_type} {case.body!r:.300}: "
                        f"{response.status_code} {response.text[:200]}"
                    )

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid: GET /healthz has no inputs, and the receipt webhooks
                # read a raw signed body that the schema does not describe.
                no_inputs = operation.method.upper() == "GET" or operation.path.startswith("/webhooks/")
                assert mode is GenerationMode.NEGATIVE and no_inputs
    assert not failures, failures[:5]
    assert {202, 422} <= statuses, statuses  # both stored events and refused ones were exercised
