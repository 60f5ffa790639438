"""coupon_code_for: one code per decision and asset, stable across retries, readable, and the
form ingest stores a redeemed code in (so the two meet in attribution)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import fields
from mcp_tools.coupon_codes import ALPHABET, coupon_code_for

ids = st.text(min_size=1, max_size=60).filter(lambda s: s.strip() != "" and "\x00" not in s)
FORM = re.compile(r"MCA-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def test_known_value_and_form() -> None:
    # Pinned: a code already mailed to a customer must still name its decision after an upgrade.
    code = coupon_code_for("d-1", "asset-1")
    assert code == "MCA-VKNF-G334-6XQQ" == coupon_code_for("d-1", "asset-1")
    assert FORM.fullmatch(code)
    assert not set("ILOU") & set(ALPHABET) and len(set(ALPHABET)) == 32


@given(decision=ids, asset=ids)
def test_every_code_is_typeable_and_survives_ingest(decision: str, asset: str) -> None:
    code = coupon_code_for(decision, asset)
    assert FORM.fullmatch(code)
    # A customer types it in lower case with spaces around it; ingest gives back the same code.
    errors: list[fields.FieldError] = []
    assert fields.coupon_code({"coupon": f"  {code.lower()} "}, "properties", errors) == code
    assert errors == []


def test_unique_per_decision_and_per_asset() -> None:
    decisions = [f"dec-{i}" for i in range(20_000)]
    codes = {coupon_code_for(d, "asset-1") for d in decisions}
    assert len(codes) == len(decisions)
    assert coupon_code_for("d-1", "asset-1") != coupon_code_for("d-1", "asset-2")
    # The separator keeps the two ids apart: ("a", "bc") is not ("ab", "c").
    assert coupon_code_for("a", "bc") != coupon_code_for("ab", "c")


@pytest.mark.parametrize(("decision", "asset", "name"), [("", "a", "decision_id"), ("d", " ", "asset_id")])
def test_empty_ids_are_refused_by_name(decision: str, asset: str, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        coupon_code_for(decision, asset)
