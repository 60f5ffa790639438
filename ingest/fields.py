"""Small validators for one field each, and the well-known properties that fill typed columns.

Every validator returns the clean value or appends a ``FieldError`` naming the path and the
reason, so one pass reports every bad field of a request instead of the first one.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from ingest.errors import FieldError
from mca.limits import MAX_ID_CHARS

MAX_TYPE_CHARS = 128
FUTURE_TOLERANCE = timedelta(minutes=5)
# numeric(14, 2): twelve digits before the point.
MAX_VALUE = 10**12
MAX_POINTS = 2**31 - 1

# Typed column -> the property names that fill it, first present wins.
VALUE_KEYS = ("revenue", "value", "price", "total")
POINTS_KEYS = ("points",)
SKU_KEYS = ("sku", "product_id")
CATEGORY_KEYS = ("category",)
TEXT_KEYS = ("text", "body", "message", "comment", "review")
# A redemption's code, first present wins: mca's own name, then Segment's Order Completed
# (`coupon`) and Coupon Applied (`coupon_id`). Stored as ``coupon_code``, trimmed and upper-cased
# (people type codes in any case), so attribution joins one name to the code mca sent.
COUPON_KEYS = ("coupon_code", "coupon", "coupon_id")
# Channels an `unsubscribed` event may withdraw consent on; `all` withdraws every one.
CONSENT_CHANNELS = ("email", "sms", "push")
UNSUBSCRIBE_CHANNELS = (*CONSENT_CHANNELS, "all")

# Properties the views CAST (user_profile, user_stats): a wrong type there would break the
# view for every user at read time, so they are checked at the door.
BOOLEAN_TRAITS = ("consent_sms", "consent_email", "consent_push", "do_not_contact")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Not zones but files some tz databases ship beside them; PostgreSQL knows none of them.
_NOT_ZONES = frozenset({"localtime", "posixrules", "factory"})


@cache
def _zone_names() -> dict[str, str]:
    """IANA zone names (lower case -> canonical), from the system or the tzdata package."""
    return {name.lower(): name for name in zoneinfo.available_timezones() if name.lower() not in _NOT_ZONES}


def text_id(value: Any, path: str, errors: list[FieldError], *, required: bool = True) -> str | None:
    """An identifier: a non-empty string (or an integer, as Segment allows for userId)."""
    if type(value) is str and 0 < len(value) <= MAX_ID_CHARS and not value.isspace():
        return value  # the common case first: this runs several times for every event
    if value is None:
        if required:
            errors.append(FieldError(path, "required"))
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors.append(FieldError(path, "must be a string"))
        return None
    text = str(value)
    if not text.strip():
        errors.append(FieldError(path, "must not be empty"))
        return None
    if len(text) > MAX_ID_CHARS:
        errors.append(FieldError(path, f"longer than {MAX_ID_CHARS} characters"))
        return None
    return text


def event_name(value: Any, path: str, errors: list[FieldError]) -> str | None:
    if type(value) is str and 0 < len(value) <= MAX_TYPE_CHARS and not value.isspace():
        return value
    if value is None:
        errors.append(FieldError(path, "required"))
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(path, "must be a non-empty string"))
        return None
    if len(value) > MAX_TYPE_CHARS:
        errors.append(FieldError(path, f"longer than {MAX_TYPE_CHARS} characters"))
        return None
    return value


def timestamp(value: Any, path: str, errors: list[FieldError], now: datetime) -> datetime | None:
    """An ISO 8601 / RFC 3339 time with an offset, not more than 5 minutes ahead of ``now``."""
    if not isinstance(value, str):
        errors.append(FieldError(path, "must be an ISO 8601 string such as 2024-05-01T12:00:00Z"))
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(path, f"not an ISO 8601 timestamp: {value[:40]!r}"))
        return None
    if parsed.tzinfo is None:
        errors.append(FieldError(path, "needs a UTC offset (e.g. Z or +02:00)"))
        return None
    try:
        parsed = parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        errors.append(FieldError(path, "out of range"))
        return None
    if parsed > now + FUTURE_TOLERANCE:
        errors.append(FieldError(path, "more than 5 minutes in the future"))
        return None
    return parsed


def mapping(value: Any, path: str, errors: list[FieldError]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(path, "must be an object"))
        return {}
    return value


def _first(props: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        value = props.get(key)
        if value is not None:
            return key, value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _value(key: str, raw: Any, path: str, errors: list[FieldError]) -> float | None:
    number = _number(raw)
    if number is None:
        errors.append(FieldError(f"{path}.{key}", "must be a number"))
    elif abs(number) >= MAX_VALUE:
        errors.append(FieldError(f"{path}.{key}", f"must be below {MAX_VALUE:,} in magnitude"))
    else:
        return round(number, 2)
    return None


def _points(key: str, raw: Any, path: str, errors: list[FieldError]) -> int | None:
    number = _number(raw)
    if number is None or number != int(number):
        errors.append(FieldError(f"{path}.{key}", "must be an integer"))
    elif abs(number) > MAX_POINTS:
        errors.append(FieldError(f"{path}.{key}", "out of the 32-bit integer range"))
    else:
        return int(number)
    return None


def _string(key: str, raw: Any, path: str, errors: list[FieldError]) -> str | None:
    if isinstance(raw, str):
        return raw
    errors.append(FieldError(f"{path}.{key}", "must be a string"))
    return None


def _sku(key: str, raw: Any, path: str, errors: list[FieldError]) -> str | None:
    if type(raw) is str and 0 < len(raw) <= MAX_ID_CHARS and not raw.isspace():
        return raw  # the common case, without spelling out the path
    return text_id(raw, f"{path}.{key}", errors)


(_POINTS_KEY,) = POINTS_KEYS
(_CATEGORY_KEY,) = CATEGORY_KEYS
_TYPED_KEYS = frozenset(VALUE_KEYS + POINTS_KEYS + SKU_KEYS + CATEGORY_KEYS + TEXT_KEYS)


def typed_columns(props: dict[str, Any], path: str, errors: list[FieldError]) -> dict[str, Any]:
    """value, points, sku, category, text from the well-known properties (which also stay
    in ``properties``: the mapping is lossless). It runs for every event, so a plain number
    or string is taken inline and the validators (which spell out paths) see the rest."""
    out: dict[str, Any] = {"value": None, "points": None, "sku": None, "category": None, "text": None}
    if _TYPED_KEYS.isdisjoint(props):
        return out
    get = props.get
    for key in VALUE_KEYS:
        raw = get(key)
        if raw is not None:
            plain = (type(raw) is float or type(raw) is int) and -MAX_VALUE < raw < MAX_VALUE
            out["value"] = round(float(raw), 2) if plain else _value(key, raw, path, errors)
            break
    raw = get(_POINTS_KEY)
    if raw is not None:
        plain = type(raw) is int and -MAX_POINTS <= raw <= MAX_POINTS
        out["points"] = raw if plain else _points(_POINTS_KEY, raw, path, errors)
    for key in SKU_KEYS:
        raw = get(key)
        if raw is not None:
            out["sku"] = _sku(key, raw, path, errors)
            break
    raw = get(_CATEGORY_KEY)
    if raw is not None:
        out["category"] = _string(_CATEGORY_KEY, raw, path, errors)
    for key in TEXT_KEYS:
        raw = get(key)
        if raw is not None:
            out["text"] = _string(key, raw, path, errors)
            break
    return out


def coupon_code(props: dict[str, Any], path: str, errors: list[FieldError]) -> str | None:
    """The redeemed code from the first of COUPON_KEYS present, normalised (see there)."""
    found = _first(props, COUPON_KEYS)
    if found is None:
        return None
    code = text_id(found[1], f"{path}.{found[0]}", errors)
    return None if code is None else code.strip().upper()


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# mca's own events (mcp_tools.action_events, mcp_tools.announce): the attribution views CAST
# these properties (sql/state 300, 310), so one bad value posted by anyone would break every
# report over the stream; they are refused at the door instead.
MCA_EVENT_TYPES = frozenset(
    {"offer_sent", "message_sent", "points_awarded", "crm_updated", "action_withheld", "decision_recorded"}
)
MAX_WINDOW_S = 10 * 366 * 86400  # ten years: longer is a unit slip (milliseconds), not a window


def _decimal(value: Any) -> Decimal | None:
    """The number `value` is, as JSON number or numeric text (mca writes costs as text), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def check_action_properties(props: dict[str, Any], path: str, errors: list[FieldError]) -> None:
    """cost and propensity numbers (propensity a probability), window_s a whole number of seconds."""
    cost = props.get("cost")
    if cost is not None and _decimal(cost) is None:
        errors.append(FieldError(f"{path}.cost", "must be a number"))
    propensity = props.get("propensity")
    if propensity is not None:
        p = _decimal(propensity)
        if p is None or not 0 < p <= 1:
            errors.append(FieldError(f"{path}.propensity", "must be a probability in (0, 1]"))
    window = props.get("window_s")
    if window is not None:
        w = _decimal(window)
        if w is None or w != w.to_integral_value() or not 0 < w <= MAX_WINDOW_S:
            reason = f"must be a whole number of seconds, 1 to {MAX_WINDOW_S}"
            errors.append(FieldError(f"{path}.window_s", reason))


def check_cast_properties(
    event_type: str, props: dict[str, Any], path: str, errors: list[FieldError]
) -> None:
    """Reject values the live views would fail to CAST (see BOOLEAN_TRAITS, MCA_EVENT_TYPES)."""
    if event_type in MCA_EVENT_TYPES:
        check_action_properties(props, path, errors)
    elif event_type == "identify":
        for key in BOOLEAN_TRAITS:
            value = props.get(key)
            if value is not None and not isinstance(value, bool):
                errors.append(FieldError(f"{path}.{key}", "must be true or false"))
        birthday = props.get("birthday")
        if birthday is not None and not _is_date(birthday):
            errors.append(FieldError(f"{path}.birthday", "must be a date such as 1990-04-23"))
        zone = props.get("timezone")
        if zone is not None and not (isinstance(zone, str) and zone.lower() in _zone_names()):
            # The opportunity queries convert times into the customer's zone for everyone at once.
            errors.append(FieldError(f"{path}.timezone", "must be an IANA time zone such as Europe/Paris"))
    elif event_type == "unsubscribed":
        channel = props.get("channel")
        if channel is not None and channel not in UNSUBSCRIBE_CHANNELS:
            errors.append(FieldError(f"{path}.channel", "must be one of " + ", ".join(UNSUBSCRIBE_CHANNELS)))
    elif event_type == "churn_scored":
        score = props.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            errors.append(FieldError(f"{path}.score", "must be a number"))
