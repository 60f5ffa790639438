"""Property-based tests of the event mapping (Segment / CloudEvents → events row)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import fields
from ingest.errors import ValidationFailed
from ingest.formats import CE_BATCH, CE_SINGLE, JSON, RequestMeta, to_rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
META = RequestMeta(received_at=NOW)
WELL_KNOWN = (
    set(fields.VALUE_KEYS + fields.POINTS_KEYS + fields.SKU_KEYS + fields.CATEGORY_KEYS + fields.TEXT_KEYS)
    | set(fields.BOOLEAN_TRAITS)
    | {"birthday", "score"}
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
plain_props = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda k: k not in WELL_KNOWN), json_values, max_size=6
)
ids = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
past_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2026, 3, 1, 12, 4), timezones=st.just(UTC)
)
money = st.decimals(min_value=-(10**11), max_value=10**11, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    user=ids | st.integers(0, 10**12),
    event=ids,
    message_id=ids,
    when=past_times,
    props=plain_props,
    revenue=money,
)
def test_track_maps_to_one_row(
    user: Any, event: str, message_id: str, when: datetime, props: dict[str, Any], revenue: Any
) -> None:
    doc = {
        "type": "track",
        "event": event,
        "userId": user,
        "messageId": message_id,
        "timestamp": when.isoformat(),
        "properties": {**props, "revenue": float(revenue)},
    }
    [row] = to_rows(JSON, doc, META)
    assert (row["event_id"], row["user_id"], row["event_type"]) == (message_id, str(user), event)
    assert row["ts"] == when and row["received_at"] == NOW
    assert row["value"] == round(float(revenue), 2)
    # Lossless: every property stays in properties, the well-known ones too.
    assert {k: row["properties"][k] for k in props} == props
    assert row["points"] is None and row["sku"] is None and row["text"] is None


@settings(max_examples=300, deadline=None)
@given(doc=json_values, kind=st.sampled_from([JSON, CE_SINGLE, CE_BATCH]))
def test_anything_either_maps_or_names_its_bad_fields(doc: Any, kind: str) -> None:
    try:
        rows = to_rows(kind, doc, META)
    except ValidationFailed as err:
        assert err.errors and all(e.reason for e in err.errors)
        return
    for row in rows:
        assert row["user_id"] and row["event_id"] and row["event_type"]


@settings(max_examples=100, deadline=None)
@given(
    batch=st.lists(
        st.fixed_dictionaries({"event": ids, "userId": ids, "properties": plain_props}),
        min_size=1,
        max_size=8,
    ),
    bad_index=st.integers(0, 7),
)
def test_one_bad_event_rejects_the_batch_and_names_its_index(
    batch: list[dict[str, Any]], bad_index: int
) -> None:
    bad_index %= len(batch)
    batch[bad_index] = {**batch[bad_index], "timestamp": (NOW + timedelta(minutes=6)).isoformat()}
    with pytest.raises(ValidationFailed) as caught:
        to_rows(JSON, {"batch": batch}, META)
    assert [e.path for e in caught.value.errors] == [f"batch[{bad_index}].timestamp"]


@settings(max_examples=100, deadline=None)
@given(
    source=st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and not any(c.isspace() for c in s)),
    ce_id=ids,
    subject=ids,
    data=plain_props,
)
def test_cloudevent_key_is_source_and_id(source: str, ce_id: str, subject: str, data: dict[str, Any]) -> None:
    doc = {"specversion": "1.0", "id": ce_id, "source": source, "type": "t", "subject": subject, "data": data}
    [row] = to_rows(CE_SINGLE, doc, META)
    assert row["event_id"] == f"{source} {ce_id}" and row["user_id"] == subject and row["source"] == source
    assert {k: row["properties"][k] for k in data} == data and row["properties"]["_ce"] == {
        "id": ce_id,
        "source": source,
    }


@given(
    points=st.integers(-(2**31) + 1, 2**31 - 1), sku=ids | st.integers(0, 10**9), text=st.text(max_size=50)
)
def test_well_known_properties_fill_typed_columns(points: int, sku: Any, text: str) -> None:
    doc = {
        "event": "x",
        "userId": "u",
        "properties": {"points": points, "product_id": sku, "review": text, "category": "c"},
    }
    [row] = to_rows(JSON, doc, META)
    assert (row["points"], row["sku"], row["text"], row["category"]) == (points, str(sku), text, "c")


def test_anonymous_and_page_mapping() -> None:
    [row] = to_rows(JSON, {"type": "page", "anonymousId": "anon-1", "name": "Home"}, META)
    assert (row["user_id"], row["event_type"], row["properties"]["name"]) == ("anon-1", "page", "Home")
    assert row["ts"] == NOW and row["event_id"].startswith("gen-")
    [row] = to_rows(JSON, {"type": "track", "event": "e", "userId": "u", "anonymousId": "a"}, META)
    assert row["properties"]["_anonymous_id"] == "a"


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="needs a UTC offset"):
        to_rows(JSON, {"event": "x", "userId": "u", "timestamp": "2026-01-01T00:00:00"}, META)
