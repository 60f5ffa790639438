"""The report period written as operators write durations: ``30d``, ``12h``, ``90m``."""

from __future__ import annotations

import re
from datetime import timedelta

_SINCE = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(value: str) -> timedelta:
    match = _SINCE.match(value)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a period (use e.g. 30d, 12h, 2w): {value!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]
