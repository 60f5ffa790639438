"""The policy: what the guard allows, as data. Read from YAML, re-read when the file changes.

An invalid edit never takes effect: the store keeps the last good policy, logs the error with
its line, and exposes it as `PolicyStore.last_error`. The version a verdict was decided under
is `version#<first 8 hex of the file's sha256>`, so an audit row points at exact bytes.
"""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mca.reloading import ReloadingFile
from mcp_tools.contract import ALL_TOOLS, READ_TOOLS, SIDE_EFFECT_TOOLS
from mcp_tools.errors import PolicyError

__all__ = [
    "ALL_TOOLS",
    "READ_TOOLS",
    "SIDE_EFFECT_TOOLS",
    "Policy",
    "PolicyStore",
    "load_policy",
    "parse_policy",
]

log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietHours(_Strict):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class Caps(_Strict):
    day: int | None = Field(default=None, ge=0)
    week: int | None = Field(default=None, ge=0)
    month: int | None = Field(default=None, ge=0)

    def items(self) -> list[tuple[str, int]]:
        return [(p, v) for p in ("day", "week", "month") if (v := getattr(self, p)) is not None]


class Amounts(_Strict):
    """Money limits per period (in `budgets.currency`)."""

    day: Decimal | None = Field(default=None, ge=0)
    week: Decimal | None = Field(default=None, ge=0)
    month: Decimal | None = Field(default=None, ge=0)

    def items(self) -> list[tuple[str, Decimal]]:
        return [(p, v) for p in ("day", "week", "month") if (v := getattr(self, p)) is not None]


class ChannelPolicy(_Strict):
    quiet_hours: QuietHours | None = None
    caps: Caps = Caps()
    min_gap_hours: float = Field(default=0, ge=0)


class SmsPolicy(_Strict):
    max_segments: int = Field(default=2, ge=1)
    max_chars: int = Field(default=1000, ge=1)
    opt_out_text: str = "Reply STOP to opt out."
    append_opt_out: bool = True
    require_opt_out: bool = True
    # Matched after normalisation (NFKC, no format characters, look-alike letters folded).
    banned_phrases: list[str] = []
    # Links and phone numbers an SMS may carry besides those in the catalogue's own texts:
    # hosts (a subdomain of one is allowed too) and numbers (compared by their digits).
    allowed_links: list[str] = []
    allowed_numbers: list[str] = []
    cost_per_segment: Decimal = Field(default=Decimal("0"), ge=0)


class CouponPolicy(_Strict):
    channel: str = "email"
    max_value: Decimal = Field(default=Decimal("50"), ge=0)
    # Held when one coupon, or the decision's running total of coupon value, is above this.
    approval_above: Decimal | None = None
    # Most coupon value one customer may be sent per period (their calendar).
    per_user: Amounts = Amounts()


class PointsPolicy(_Strict):
    max_per_award: int = Field(default=1000, ge=1)
    # Held when one award, or the decision's running total of points, is above this.
    approval_above: int | None = None
    # Most points one customer may be given per period (their calendar).
    per_user: Amounts = Amounts()
    value_per_point: Decimal = Field(default=Decimal("0.01"), ge=0)


class CrmPolicy(_Strict):
    allowed_fields: list[str] = []
    max_value_chars: int = Field(default=500, ge=1)


class Budgets(_Strict):
    currency: str = "USD"
    global_: Amounts = Field(default=Amounts(), alias="global")
    per_user: Amounts = Amounts()
    per_asset_redemptions: int | None = Field(default=None, ge=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _known_tools(tools: list[str]) -> list[str]:
    unknown = sorted(set(tools) - set(ALL_TOOLS))
    if unknown:
        raise ValueError(f"unknown tools {unknown}; known: {[str(t) for t in ALL_TOOLS]}")
    return tools


class TriggerPolicy(_Strict):
    tools: list[str] = list(ALL_TOOLS)
    budget: Amounts = Amounts()

    _tools = field_validator("tools")(_known_tools)


class CallerPolicy(_Strict):
    """How far a caller is trusted. `trust_meta`: its `mca.trigger` meta is believed (the
    in-process agent); otherwise the caller always acts as `trigger` and only `tools`."""

    trust_meta: bool = False
    trigger: str = "external"
    tools: list[str] = list(READ_TOOLS)
    _tools = field_validator("tools")(_known_tools)
    # A call with neither a decision id nor an idempotency key (meta `mca.idempotency_key`)
    # replays an identical earlier call only within this many seconds; then it is judged anew.
    replay_window_s: int = Field(default=600, ge=1)


_NO_CHANNEL_POLICY = ChannelPolicy()


class Policy(_Strict):
    version: str = "1"
    kill_switch: bool = False
    shadow: bool = False
    timezone: str = "UTC"
    default_user_timezone: str = "UTC"
    caps: Caps = Caps()
    min_gap_hours: float = Field(default=0, ge=0)
    channels: dict[str, ChannelPolicy] = {}
    sms: SmsPolicy = SmsPolicy()
    coupons: CouponPolicy = CouponPolicy()
    points: PointsPolicy = PointsPolicy()
    crm: CrmPolicy = CrmPolicy()
    budgets: Budgets = Budgets()
    triggers: dict[str, TriggerPolicy] = {"default": TriggerPolicy()}
    callers: dict[str, CallerPolicy] = {"agent": CallerPolicy(trust_meta=True, tools=list(ALL_TOOLS))}

    # Filled by the loader, not by YAML.
    fingerprint: str = ""

    @field_validator("timezone", "default_user_timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone

    @property
    def version_id(self) -> str:
        return f"{self.version}#{self.fingerprint}" if self.fingerprint else self.version

    def channel(self, name: str) -> ChannelPolicy:
        # One shared default (the models are frozen): building one per call costs a validation.
        return self.channels.get(name, _NO_CHANNEL_POLICY)

    def trigger(self, name: str) -> TriggerPolicy | None:
        return self.triggers.get(name, self.triggers.get("default"))

    def caller(self, name: str) -> CallerPolicy:
        return self.callers.get(name) or self.callers.get("default") or CallerPolicy()


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location (its deepest known key)."""
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line
            key_node = next(k for k, v in node.value if v is match)
            line, node = key_node.start_mark.line + 1, match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def parse_policy(text: str) -> Policy:
    """Validate policy YAML; errors name the line and the field."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise PolicyError(
            f"policy YAML does not parse: {problem}", line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(raw, dict):
        raise PolicyError("policy must be a YAML mapping", line=1)
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(p for p in first["loc"] if p != "global_")
        where = ".".join(str(p) for p in first["loc"])
        raise PolicyError(f"policy field {where}: {first['msg']}", line=_line_of(text, loc)) from None
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:8]
    return policy.model_copy(update={"fingerprint": fingerprint})


def load_policy(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as err:
        raise PolicyError(f"cannot read policy file {path}: {err.strerror}") from None
    return parse_policy(text)


class PolicyStore:
    """The policy in force, re-read when the file's mtime or size changes (`mca.reloading`)."""

    def __init__(self, path: Path) -> None:
        self._file = ReloadingFile(
            Path(path), load_policy, rejects=(PolicyError,), on_reload=_log_reload, what="policy"
        )
        self.path = self._file.path

    @property
    def last_error(self) -> PolicyError | None:
        err = self._file.last_error
        return err if isinstance(err, PolicyError) else None

    def current(self) -> Policy:
        return self._file.current()


def _log_reload(previous: Policy, policy: Policy) -> None:
    if policy.version_id != previous.version_id:
        log.info("policy reloaded: %s -> %s", previous.version_id, policy.version_id)
