"""Durations as operators write them, in YAML and on the command line: ``90s``, ``5m``, ``12h``,
``30d``, ``2w`` (also ``250ms``, and fractions such as ``1.5h``). One grammar for the trigger
file's windows and cooldowns, every ``--since`` period and the audit export's span back from now.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def match_duration(text: str) -> timedelta | None:
    """The duration `text` writes, or None when it is not one."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def parse_duration(value: object) -> timedelta:
    """A timedelta from ``"90s"``/``"5m"``/``"1d"`` or a number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return timedelta(seconds=float(value))
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and (found := match_duration(value)) is not None:
        return found
    raise ValueError(f"not a duration (use e.g. 30s, 5m, 2h, 1d): {value!r}")


def parse_since(value: str) -> timedelta:
    """A report period back from now (``--since 30d``): a duration longer than zero."""
    found = match_duration(value)
    if found is None or found <= timedelta(0):
        raise ValueError(f"not a period (use e.g. 30d, 12h, 2w): {value!r}")
    return found
