"""Reading and validating asset files (JSON list of objects, or CSV with a header row).

Every row is checked before anything is written; the first bad row stops the load with an
``InputError`` naming the row number (1-based, data rows only) and the field.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mca.errors import InputError
from mca.limits import MAX_ID_CHARS

ASSET_KINDS = ("coupon", "reward", "content")
FIELDS = (
    "asset_id", "kind", "title", "description", "value", "currency", "category", "tags",
    "active", "valid_from", "valid_until",
)  # fmt: skip


class AssetRow(BaseModel):
    """One catalogue item as a file gives it (the embedding is computed, never supplied)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    asset_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    kind: Literal["coupon", "reward", "content"]
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=4000)
    value: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: str | None = Field(default=None, max_length=16)
    category: str | None = Field(default=None, max_length=100)
    tags: tuple[str, ...] = ()
    active: bool = True
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        # CSV cells carry tags as "a;b;c" (commas would fight the CSV quoting).
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(";") if t.strip())
        return value

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-01-31T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AssetRow:
        if self.kind in ("coupon", "reward") and self.value is None:
            raise ValueError(f"value: a {self.kind} needs a value (coupon face value or reward cost)")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until: must be later than valid_from")
        return self


def _clean_csv_row(raw: dict[str | None, Any]) -> dict[str, Any]:
    if None in raw:
        raise ValueError("row has more cells than the header has columns")
    # An empty CSV cell means "not given", so optional fields take their defaults.
    return {str(k): v for k, v in raw.items() if v not in (None, "")}


def _describe(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) if first["loc"] else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    if not loc and ":" in message.split(" ")[0]:  # model-level checks name their field first
        loc, message = message.split(":", 1)
    if first["type"] == "extra_forbidden":
        message = f"unknown field (expected one of: {', '.join(FIELDS)})"
    return loc or "row", message.strip()


def validate_rows(raw_rows: list[Any], *, source: str) -> list[AssetRow]:
    rows: list[AssetRow] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_rows, start=1):
        if not isinstance(raw, dict):
            raise InputError(f"{source}: row {number}: expected an object, got {type(raw).__name__}")
        try:
            row = AssetRow.model_validate(raw)
        except ValidationError as err:
            field, reason = _describe(err)
            raise InputError(f"{source}: row {number}: field {field!r}: {reason}") from None
        if row.asset_id in seen:
            raise InputError(
                f"{source}: row {number}: field 'asset_id': {row.asset_id!r} repeats row {seen[row.asset_id]}"
            )
        seen[row.asset_id] = number
        rows.append(row)
    return rows


def read_asset_file(path: Path) -> list[AssetRow]:
    """Parse and validate a whole file; raises ``InputError`` on the first bad row."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{source}: cannot read: {err}") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{source}: not valid JSON: {err}") from None
        if not isinstance(data, list):
            raise InputError(f"{source}: expected a JSON list of asset objects")
        return validate_rows(data, source=source)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        raw_rows: list[Any] = []
        for number, raw in enumerate(reader, start=1):
            try:
                raw_rows.append(_clean_csv_row(raw))
            except ValueError as err:
                raise InputError(f"{source}: row {number}: {err}") from None
        return validate_rows(raw_rows, source=source)
    raise InputError(f"{source}: unknown file type {suffix!r}: use .json or .csv")
