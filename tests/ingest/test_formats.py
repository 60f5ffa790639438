"""Property-based tests of the event mapping (Segment / CloudEvents → events row)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import fields
from ingest.errors import ValidationFailed
from ingest.formats import CE_BATCH, CE_SINGLE, JSON, RequestMeta, spec_event_type, to_rows

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
META = RequestMeta(received_at=NOW)
WELL_KNOWN = (
    set(fields.VALUE_KEYS + fields.POINTS_KEYS + fields.SKU_KEYS + fields.CATEGORY_KEYS + fields.TEXT_KEYS)
    | set(fields.BOOLEAN_TRAITS)
    | {"birthday", "score", "_ce"}
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
# Track names that are not Segment spec events, so the row keeps the name as its type.
plain_names = ids.filter(lambda s: spec_event_type(s) == s)
past_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2026, 3, 1, 12, 4), timezones=st.just(UTC)
)
money = st.decimals(min_value=-(10**11), max_value=10**11, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    user=ids | st.integers(0, 10**12),
    event=plain_names,
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


def test_a_cloudevent_whose_data_names_the_reserved_key_is_refused() -> None:
    doc = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "subject": "u", "data": {"_ce": 1}}
    with pytest.raises(ValidationFailed) as caught:
        to_rows(CE_SINGLE, doc, META)
    assert [(e.path, e.reason) for e in caught.value.errors] == [
        ("data._ce", "reserved for the CloudEvent's own attributes")
    ]


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


# --- Segment / RudderStack spec events through the real /ingest ------------------------------
# Each case: the event as a Segment source sends it -> the stored row (type, typed columns and
# the properties attribution reads).

SPEC_CASES = [
    pytest.param(
        {
            "event": "Order Completed",
            "properties": {
                "order_id": "o-1",
                "revenue": 42.5,
                "total": 47.0,
                "coupon": " mca-abcd-efgh ",
                "products": [{"sku": "SKU-9", "category": "shoes", "price": 42.5}],
            },
        },
        {"event_type": "purchase", "value": 42.5, "sku": "SKU-9", "category": "shoes"},
        {"coupon_code": "MCA-ABCD-EFGH", "coupon": " mca-abcd-efgh ", "_event": "Order Completed"},
        id="order-completed-is-a-purchase",
    ),
    pytest.param(
        {"event": "order_completed", "properties": {"total": 12, "sku": "TOP"}},
        {"event_type": "purchase", "value": 12, "sku": "TOP", "category": None},
        {"_event": "order_completed"},
        id="order-completed-snake-case-total",
    ),
    pytest.param(
        {"event": "purchase", "properties": {"revenue": 9.99, "coupon_code": "MCA-1"}},
        {"event_type": "purchase", "value": 9.99, "sku": None, "category": None},
        {"coupon_code": "MCA-1"},
        id="plain-purchase-unchanged",
    ),
    pytest.param(
        {
            "event": "Coupon Applied",
            "properties": {"coupon_id": "mca-zz", "coupon_name": "Spring", "discount": 5},
        },
        {"event_type": "coupon_applied", "value": None, "sku": None, "category": None},
        {"coupon_code": "MCA-ZZ", "coupon_name": "Spring", "_event": "Coupon Applied"},
        id="coupon-applied",
    ),
    pytest.param(
        {"event": "Email Opened", "properties": {"email_id": "e-1", "decision_id": "d-1"}},
        {"event_type": "email_opened", "value": None, "sku": None, "category": None},
        {"email_id": "e-1", "decision_id": "d-1", "_event": "Email Opened"},
        id="email-opened",
    ),
    pytest.param(
        {"event": "Email Link Clicked", "properties": {"link_url": "https://x.io/a", "decision_id": "d-1"}},
        {"event_type": "email_link_clicked", "value": None, "sku": None, "category": None},
        {"link_url": "https://x.io/a", "decision_id": "d-1"},
        id="email-link-clicked",
    ),
    pytest.param(
        {"event": "Unsubscribed", "properties": {"list_id": "news"}},
        {"event_type": "unsubscribed", "value": None, "sku": None, "category": None},
        {"list_id": "news", "_event": "Unsubscribed"},
        id="unsubscribed",
    ),
]


def spec_track(doc: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "u1",
        "messageId": message_id,
        "timestamp": "2026-01-05T10:00:00Z",
        **doc,
    }


@pytest.mark.parametrize(("given", "columns", "properties"), SPEC_CASES)
async def test_spec_event_is_stored_as(
    client: httpx.AsyncClient,
    fetch_events: Callable[[], list[dict[str, Any]]],
    given: dict[str, Any],
    columns: dict[str, Any],
    properties: dict[str, Any],
) -> None:
    resp = await client.post("/ingest", json=spec_track(given))
    assert resp.status_code == 202, resp.text
    row = fetch_events()[0]
    got = {k: float(row[k]) if k == "value" and row[k] is not None else row[k] for k in columns}
    assert got == columns
    assert {k: row["properties"].get(k) for k in properties} == properties
    assert {k: row["properties"][k] for k in given["properties"]} == given["properties"]  # lossless


async def test_order_completed_counts_as_revenue_in_user_stats(
    client: httpx.AsyncClient, db_url: str
) -> None:
    orders = [
        spec_track(
            {"event": "Order Completed", "properties": {"revenue": 30, "products": [{"sku": "A"}]}}, "m-1"
        ),
        spec_track({"event": "purchase", "properties": {"revenue": 12.5, "sku": "B"}}, "m-2")
        | {"timestamp": "2026-01-06T10:00:00Z"},
        spec_track({"event": "Coupon Applied", "properties": {"coupon": "X"}}, "m-3"),
    ]
    resp = await client.post("/ingest", json={"batch": orders})
    assert resp.status_code == 202, resp.text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT purchases, lifetime_value, last_purchase_sku FROM user_stats WHERE user_id = 'u1'"
        ).fetchone()
    assert row is not None and (row[0], float(row[1]), row[2]) == (2, 42.5, "B")


@pytest.mark.parametrize(
    ("channel", "withdrawn"),
    [(None, ("email",)), ("sms", ("sms",)), ("all", ("email", "sms", "push"))],
)
async def test_unsubscribed_withdraws_consent_in_the_profile(
    client: httpx.AsyncClient,
    db_url: str,
    count_events: Callable[..., int],
    channel: str | None,
    withdrawn: tuple[str, ...],
) -> None:
    consent = {"consent_email": True, "consent_sms": True, "consent_push": True}
    identify = {"type": "identify", "userId": "u1", "traits": consent, "timestamp": "2026-01-01T00:00:00Z"}
    assert (await client.post("/ingest", json=identify)).status_code == 202
    props = {} if channel is None else {"channel": channel}
    unsubscribe = spec_track({"event": "Unsubscribed", "properties": props}, "m-unsub")
    first = await client.post("/ingest", json=unsubscribe)
    again = await client.post("/ingest", json=unsubscribe)
    assert first.json()["event_ids"] == ["m-unsub", "m-unsub:consent"]
    assert again.json()["duplicates"] == 2 and count_events("event_type = 'unsubscribed'") == 1
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT consent_email, consent_sms, consent_push FROM user_profile WHERE user_id = 'u1'"
        ).fetchone()
    assert row == tuple(c not in withdrawn for c in ("email", "sms", "push"))


@pytest.mark.parametrize(
    ("given", "path", "reason"),
    [
        ({"event": "Unsubscribed", "properties": {"channel": "fax"}}, "properties.channel", "must be one of"),
        (
            {"event": "Order Completed", "properties": {"coupon": {"c": 1}}},
            "properties.coupon",
            "must be a string",
        ),
        (
            {"event": "Coupon Applied", "properties": {"coupon_id": " "}},
            "properties.coupon_id",
            "must not be empty",
        ),
        (
            {"event": "Order Completed", "properties": {"products": [{"category": 7}]}},
            "properties.products[0].category",
            "must be a string",
        ),
    ],
)
async def test_bad_outcome_fields_are_named_and_nothing_is_stored(
    client: httpx.AsyncClient,
    count_events: Callable[..., int],
    given: dict[str, Any],
    path: str,
    reason: str,
) -> None:
    resp = await client.post(
        "/ingest", json={"batch": [spec_track({"event": "x", "properties": {}}, "ok"), spec_track(given)]}
    )
    assert resp.status_code == 422
    [error] = resp.json()["error"]["errors"]
    assert error["field"] == f"batch[1].{path}" and reason in error["reason"]
    assert count_events() == 0
