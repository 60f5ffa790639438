"""Durations written the way operators write them in YAML: ``30s``, ``5m``, ``2h``, ``1d``."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


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
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    raise ValueError(f"not a duration (use e.g. 30s, 5m, 2h, 1d): {value!r}")
