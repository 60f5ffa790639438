"""The trigger service: live rules on the event stream and scheduled opportunity queries.

Each batch is one ops-store transaction: the jobs it makes, the cooldowns it sets and the
source position after it commit together, so a restart neither loses nor repeats a trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agent.queue import NewJob, send_triggered
from agent.sources import Start, StreamSource, Wakeable, dedupe
from agent.trigger_config import Opportunity, Rule, TriggerFile, TriggerSpec
from mca.backfill import is_backfill
from mca.clock import Clock, system_clock
from mca.db import one_round_trip
from mca.untrusted import typed_facts

log = logging.getLogger(__name__)

GET_POSITION = "SELECT position FROM trigger_positions WHERE source = %s FOR UPDATE"
PUT_POSITION = """
INSERT INTO trigger_positions (source, position, updated_at) VALUES (%s, %s, %s)
ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
"""
READ_POSITION = "SELECT position FROM trigger_positions WHERE source = %s"
# Every cooldown the batch's matches may meet, read (and locked) in one statement.
COOLDOWNS = """
SELECT trigger_name, user_id, fired_at FROM trigger_cooldowns
WHERE user_id = ANY(%s) AND trigger_name = ANY(%s)
ORDER BY user_id, trigger_name
FOR UPDATE
"""
USER_STATS = "SELECT * FROM user_stats WHERE user_id = %s"
PREVIOUS_EVENT = "SELECT max(ts) AS prev FROM events WHERE user_id = %s AND ts < %s AND event_id <> %s"
DUE_QUERIES = "SELECT query_name, last_run_at FROM trigger_schedule"
MARK_RUN = """
INSERT INTO trigger_schedule (query_name, last_run_at, last_jobs) VALUES (%s, %s, %s)
ON CONFLICT (query_name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, last_jobs = EXCLUDED.last_jobs
"""
TIME_ZONES = "SELECT name FROM pg_timezone_names"
ID_FIELDS = ("event_id", "user_id", "type")


@dataclass
class Match:
    spec: TriggerSpec
    user_id: str
    dedup_key: str
    event: dict[str, Any]


@dataclass
class StepReport:
    events: int = 0
    matches: int = 0
    jobs: list[str] = field(default_factory=list)
    cooled: int = 0
    too_old: int = 0  # (event, rule) pairs skipped: the event was older than the rule's max_event_age
    backfill: int = 0  # events marked backfill at ingest: never matched


def job_payload(event: dict[str, Any]) -> dict[str, Any]:
    """What a job keeps of its triggering event: ids, typed columns and the properties that are
    facts (numbers, flags, tokens). Free text stays in the state store; the worker reads it
    with the context, where the prompt fences it."""
    ids = {k: event[k] for k in ID_FIELDS if k in event}  # identifiers, checked at ingest
    typed = typed_facts({k: v for k, v in event.items() if k not in ID_FIELDS and k != "properties"})
    return {**ids, **typed, "properties": typed_facts(event.get("properties") or {})}


async def known_time_zones(state: psycopg.AsyncConnection[Any]) -> list[str]:
    """The zone names the state store accepts, lower case: opportunity queries bind them as
    %(zones)s so one customer's unknown zone cannot fail a query for everyone."""
    try:
        cur = await state.execute(TIME_ZONES)
        return sorted({str(r["name"]).lower() for r in await cur.fetchall()})
    except psycopg.Error:
        # RisingWave has no pg_timezone_names; it resolves the IANA names Python ships.
        import zoneinfo

        return sorted(z.lower() for z in zoneinfo.available_timezones())


def _opportunity_event(opportunity: Opportunity, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "type": "opportunity",
        "opportunity": opportunity.name,
        "user_id": row["user_id"],
        "at": now.isoformat(),
        "facts": typed_facts({k: _plain(v) for k, v in dict(row.get("facts") or {}).items()}),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class TriggerService:
    def __init__(
        self,
        *,
        source: StreamSource,
        state: psycopg.AsyncConnection[Any],
        ops: psycopg.AsyncConnection[Any],
        triggers: TriggerFile,
        clock: Clock = system_clock,
        start: Start = "latest",
        batch_size: int = 500,
    ) -> None:
        self.source = source
        # Both autocommit: each poll sees a fresh snapshot, and batches open their own
        # transaction on the ops connection.
        self.state = state
        self.ops = ops
        self.triggers = triggers
        self.clock = clock
        self.start = start
        self.batch_size = batch_size
        self._zones: list[str] | None = None
        self._position: dict[str, Any] | None = None  # the last one this service committed

    # -- live rules ------------------------------------------------------------------------

    async def _facts(self, rule: Rule, event: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        facts: dict[str, Any] = {"event": event}
        user_id = event["user_id"]
        if rule.needs("stats"):
            key = f"stats:{user_id}"
            if key not in cache:
                cur = await self.state.execute(USER_STATS, (user_id,))
                row = await cur.fetchone()
                cache[key] = {k: _plain(v) for k, v in (row or {}).items()}
            facts["stats"] = cache[key]
        if rule.needs("user"):
            cur = await self.state.execute(PREVIOUS_EVENT, (user_id, event["ts"], event["event_id"]))
            row = await cur.fetchone()
            prev = row["prev"] if row else None
            ts = datetime.fromisoformat(event["ts"])
            facts["user"] = {"days_away": (ts - prev).total_seconds() / 86400 if prev else None}
        return facts

    async def match_events(
        self, events: list[dict[str, Any]], now: datetime, report: StepReport | None = None
    ) -> list[Match]:
        """The rules each event satisfies. A backfilled event satisfies none, and a rule skips
        an event older than its max_event_age before any cooldown is looked at."""
        rules = self.triggers.refresh().by_event
        report = report if report is not None else StepReport()
        matches: list[Match] = []
        cache: dict[str, Any] = {}
        for event in events:
            if is_backfill(event.get("properties")):
                report.backfill += 1
                continue
            candidates = rules.get(event["type"], ())
            if not candidates:
                continue
            age = now - datetime.fromisoformat(event["ts"])
            aged = {**event, "age": age.total_seconds()}
            for rule in candidates:
                if age > rule.max_event_age:
                    report.too_old += 1
                    continue
                facts = await self._facts(rule, aged, cache)
                if all(c.holds(facts) for c in rule.conditions):
                    key = f"{rule.name}:{event['user_id']}:{event['event_id']}"
                    matches.append(Match(rule, event["user_id"], key, job_payload(event)))
        return matches

    async def _cooldowns(self, matches: list[Match]) -> dict[tuple[str, str], datetime]:
        """Inside the batch transaction: every cooldown the matches may meet, locked, in one read."""
        if not matches:
            return {}
        users = sorted({m.user_id for m in matches})
        names = sorted({m.spec.name for m in matches} | {"*"})
        cur = await self.ops.execute(COOLDOWNS, (users, names))
        return {(r["trigger_name"], r["user_id"]): r["fired_at"] for r in await cur.fetchall()}

    def _job_of(self, match: Match) -> NewJob:
        spec = match.spec
        assignment = self.triggers.refresh().experiment.assign(match.user_id, spec.name, spec.control_share)
        return NewJob(
            dedup_key=match.dedup_key,
            trigger_name=spec.name,
            user_id=match.user_id,
            goal=spec.goal,
            tools=spec.tools,
            event=match.event,
            max_attempts=spec.max_attempts,
            deadline_in=spec.deadline,
            experiment_group=assignment.group.value,
            experiment=assignment.experiment_id,
            attribution_window=spec.attribution_window,
            selection=spec.selection.value,
        )

    async def _admit(
        self, matches: list[Match], fired: dict[tuple[str, str], datetime], now: datetime, report: StepReport
    ) -> list[tuple[NewJob, Any]]:
        """Inside the batch transaction: apply cooldowns, send each job (with the cooldowns it sets
        and the workers' NOTIFY). The answers are read by `_made` once the batch is sent, except
        where the same customer matches again later in the batch: whether that job was new decides
        whether the later match is cooled, so it is read at once (one more round trip)."""
        sent: list[tuple[NewJob, Any]] = []
        last = {m.user_id: i for i, m in enumerate(matches)}
        for i, match in enumerate(matches):
            spec, user = match.spec, match.user_id
            own, anyone = fired.get((spec.name, user)), fired.get(("*", user))
            if (own is not None and own > now - spec.cooldown) or (
                anyone is not None and anyone > now - spec.user_cooldown
            ):
                report.cooled += 1
                continue
            job = self._job_of(match)
            cur = await send_triggered(self.ops, job, now=now, cooldowns=(spec.name, "*"))
            if last[user] > i:
                made = await cur.fetchone() is not None
                if made:
                    fired[(spec.name, user)] = fired[("*", user)] = now
                sent.append((job, made))
            else:
                sent.append((job, cur))
        return sent

    @staticmethod
    async def _made(sent: list[tuple[NewJob, Any]], report: StepReport) -> None:
        for job, answer in sent:
            made = answer if isinstance(answer, bool) else await answer.fetchone() is not None
            if made:
                report.jobs.append(job.job_id)

    async def position(self) -> dict[str, Any] | None:
        cur = await self.ops.execute(READ_POSITION, (self.source.name,))
        row = await cur.fetchone()
        return dict(row["position"]) if row else None

    async def step_stream(self) -> StepReport:
        """Process one batch of the stream; commits jobs + position together.

        The position this service committed last is kept, not re-read: the batch transaction
        checks it under lock anyway, and another service that moved it makes this one read again.
        The transaction is pipelined: the position check and the cooldowns in one round trip, the
        jobs, the new position and the COMMIT in another."""
        report = StepReport()
        stored = self._position if self._position is not None else await self.position()
        position = stored if stored is not None else await self.source.start_position(self.start)
        events, after = await self.source.fetch(position, self.batch_size)
        events = dedupe(events)
        report.events = len(events)
        if not events and stored is not None and after == position:
            return report
        now = self.clock()
        matches = await self.match_events(events, now, report)
        report.matches = len(matches)
        async with one_round_trip(self.ops):
            locked = await self.ops.execute(GET_POSITION, (self.source.name,))
            fired = await self._cooldowns(matches)
            row = await locked.fetchone()
            if (dict(row["position"]) if row else None) != stored:
                # Another trigger service advanced the stream meanwhile: drop this batch.
                log.warning("position of %s moved under us; batch dropped", self.source.name)
                self._position = None
                return StepReport()
            sent = await self._admit(matches, fired, now, report)
            await self.ops.execute(PUT_POSITION, (self.source.name, Jsonb(after), now))
        self._position = after
        await self._made(sent, report)
        return report

    # -- opportunity queries ---------------------------------------------------------------

    async def due_opportunities(self, now: datetime) -> list[Opportunity]:
        cur = await self.ops.execute(DUE_QUERIES)
        last = {r["query_name"]: r["last_run_at"] for r in await cur.fetchall()}
        return [
            o
            for o in self.triggers.refresh().opportunities
            if o.name not in last or last[o.name] + o.every <= now
        ]

    async def run_opportunity(self, opportunity: Opportunity, now: datetime) -> StepReport:
        report = StepReport()
        if self._zones is None:
            self._zones = await known_time_zones(self.state)
        params = {"now": now, "zones": self._zones}
        cur = await self.state.execute(opportunity.sql, params)  # type: ignore[arg-type]
        rows = await cur.fetchall()
        report.matches = len(rows)
        matches = [
            Match(opportunity, row["user_id"], row["dedup_key"], _opportunity_event(opportunity, row, now))
            for row in rows
        ]
        async with one_round_trip(self.ops):
            sent = await self._admit(matches, await self._cooldowns(matches), now, report)
            await self._made(sent, report)
            await self.ops.execute(MARK_RUN, (opportunity.name, now, len(report.jobs)))
        return report

    async def step_opportunities(self) -> StepReport:
        now = self.clock()
        total = StepReport()
        for opportunity in await self.due_opportunities(now):
            try:
                report = await self.run_opportunity(opportunity, now)
            except psycopg.Error as err:
                log.error("opportunity query %s failed: %s", opportunity.name, str(err).strip())
                continue
            total.matches += report.matches
            total.jobs += report.jobs
            total.cooled += report.cooled
        return total

    # -- the service loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, poll: timedelta = timedelta(milliseconds=100)) -> None:
        """Until `stop`: read the stream while it has events, run due opportunity queries, then
        wait. A source that can wake the service (PostgreSQL NOTIFY) ends the wait as soon as
        events commit, and `poll` is only the fallback; any other source is polled every `poll`."""
        if isinstance(self.source, Wakeable):
            await self.source.listen()  # before the first read, so no commit goes unannounced
        while not stop.is_set():
            report = await self.step_stream()
            while report.events and not stop.is_set():
                report = await self.step_stream()
            await self.step_opportunities()
            await self._idle(stop, poll.total_seconds())

    async def _idle(self, stop: asyncio.Event, timeout_s: float) -> None:
        if not isinstance(self.source, Wakeable):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout_s)
            return
        woken = asyncio.create_task(self.source.wait(timeout_s))
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({woken, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, stopped):
                task.cancel()
            await asyncio.gather(woken, stopped, return_exceptions=True)
        failure = None if woken.cancelled() else woken.exception()
        if failure is not None:
            raise failure
