"""The group sizes the triggers file configures, for the uplift report's sample-ratio check.

The report lives on a lower floor (`measure`) and may not read the triggers file itself; the
composition root (mca.cli, mca.app) and the console hand it these, so the check compares the
groups with the holdout and per-trigger control shares in force, not with the defaults.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.trigger_config import TriggerFile, TriggerSet
from mca.settings import Settings
from measure.assign import Shares


def shares_of(triggers: TriggerSet) -> Shares:
    """The global holdout and each trigger's control share (its own, else the file's default)."""
    per = {t.name: t.control_share for t in (*triggers.rules, *triggers.opportunities)}
    exp = triggers.experiment
    return Shares(holdout=exp.holdout, control=exp.control, per_trigger=per)


def triggers_file(settings: Settings) -> TriggerFile:
    """The configured triggers file, re-read when it changes."""
    return TriggerFile(
        settings.agent.triggers_file,
        queries_dir=settings.stores.sql_dir / "triggers",
        prompts_dir=settings.agent.prompts_dir,
    )


def configured_shares(settings: Settings) -> Callable[[], Shares]:
    """The shares as the triggers file sets them now (a bad edit keeps the last good ones;
    an unreadable or invalid file at the first call raises TriggerConfigError, naming the field)."""
    file = triggers_file(settings)
    return lambda: shares_of(file.refresh())
