"""The drift comparison, pure: a batch's payload shape against a contract."""

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from integration_assets.contracts import load_contract
from integration_assets.streams.schema_drift import (
    ADDED,
    REMOVED,
    RENAMED,
    RETYPED,
    compare,
    drift_verdict,
    observe,
)

CONTRACT = load_contract("storefront_orders")


def order(**changes) -> dict:
    payload = {
        "id": 1,
        "updated_at": "2026-11-20T10:00:00-05:00",
        "created_at": "2026-11-20T09:00:00-05:00",
        "currency": "USD",
        "total_price": "10.00",
        "subtotal_price": "10.00",
        "total_tax": "0.00",
        "financial_status": "paid",
        "tags": "",
        "gateway": "shopify_payments",
    }
    for name, value in changes.items():
        if value is ...:
            payload.pop(name)
        else:
            payload[name] = value
    return payload


def kinds(events) -> list[tuple[str, str]]:
    return [(event.kind, event.field) for event in events]


def test_a_batch_as_the_contract_says_has_no_drift_and_known_fields_are_not_new():
    assert compare(observe([order(id=i) for i in range(5)]), CONTRACT) == []


def test_a_new_field_is_additive_drift_that_does_not_block():
    events = compare(observe([order(loyalty_tier="gold") for _ in range(4)]), CONTRACT)
    assert kinds(events) == [(ADDED, "loyalty_tier")]
    assert not events[0].breaking
    assert events[0].detail == (
        "new field 'loyalty_tier' (string) in 4 of 4 records is not in contract storefront_orders v1"
    )
    passed, reason = drift_verdict(events, CONTRACT.label)
    assert passed and "loyalty_tier" in reason


def test_a_required_field_gone_from_the_batch_is_removed_and_named_with_the_contract():
    events = compare(observe([order(total_tax=...) for _ in range(30)]), CONTRACT)
    assert kinds(events) == [(REMOVED, "total_tax")]
    assert events[0].detail == (
        "required field 'total_tax' is missing in 30 of 30 records against contract storefront_orders v1"
    )
    passed, reason = drift_verdict(events, CONTRACT.label)
    assert not passed and "'total_tax'" in reason and "storefront_orders v1" in reason


def test_a_missing_required_field_with_a_lookalike_new_field_is_a_suggested_rename():
    batch = [order(total_price=..., total_price_amount="10.00") for _ in range(30)]
    events = compare(observe(batch), CONTRACT)
    # The new name is part of the rename, not also an "added" field.
    assert kinds(events) == [(RENAMED, "total_price")]
    assert events[0].detail == (
        "required field 'total_price' is missing in 30 of 30 records (renamed to "
        "'total_price_amount'?) against contract storefront_orders v1"
    )


def test_a_new_field_of_another_type_or_name_is_not_offered_as_the_rename():
    batch = [order(total_price=..., shipping_zone=["a"]) for _ in range(10)]
    assert kinds(compare(observe(batch), CONTRACT)) == [
        (REMOVED, "total_price"),
        (ADDED, "shipping_zone"),
    ]


def test_a_required_field_of_another_json_type_is_retyped():
    events = compare(observe([order(financial_status=3) for _ in range(10)]), CONTRACT)
    assert kinds(events) == [(RETYPED, "financial_status")]
    assert "'financial_status' is integer in 10 of 10 records" in events[0].detail
    assert "storefront_orders v1" in events[0].detail
    # Money may arrive as a JSON number (Shopify does that): not a retype.
    assert compare(observe([order(total_price=10.5) for _ in range(10)]), CONTRACT) == []


def test_a_few_bad_records_are_rows_for_quarantine_not_drift():
    batch = [order(total_tax=...)] + [order() for _ in range(9)]  # 10% < the allowed 20%
    assert compare(observe(batch), CONTRACT) == []
    assert kinds(compare(observe(batch[:3]), CONTRACT)) == [(REMOVED, "total_tax")]


def test_a_null_required_field_counts_as_missing():
    events = compare(observe([order(total_tax=None) for _ in range(5)]), CONTRACT)
    assert kinds(events) == [(REMOVED, "total_tax")]


def test_a_contract_that_accepted_the_rename_reads_both_names_without_drift():
    renamed = dataclasses.replace(CONTRACT.field_rule("total_price"), source="total_price_amount")
    v2 = dataclasses.replace(
        CONTRACT,
        version=2,
        fields=tuple(renamed if r.name == "total_price" else r for r in CONTRACT.fields),
    )
    # A batch straddling the change: older records still carry the old name.
    batch = [order(total_price=..., total_price_amount="10.00") for _ in range(6)] + [
        order() for _ in range(4)
    ]
    assert compare(observe(batch), v2) == []
    assert compare(observe([]), v2) == []


def test_records_that_are_not_objects_are_counted_apart():
    shape = observe([order(), "not an order", None])
    assert (shape.records, shape.not_objects) == (1, 2)


def _observe_record_by_record(payloads) -> tuple:
    """The shape counted one value at a time, as `observe` is specified."""
    from collections import Counter

    from integration_assets.streams.schema_drift import json_type

    records = not_objects = 0
    fields: dict[str, tuple[int, int, Counter]] = {}
    for payload in payloads:
        if not isinstance(payload, dict):
            not_objects += 1
            continue
        records += 1
        for name, value in payload.items():
            present, null, types = fields.get(name, (0, 0, Counter()))
            types[json_type(value)] += 1
            fields[name] = (present + 1, null + (value is None), types)
    return records, not_objects, [(n, p, z, list(t.items())) for n, (p, z, t) in fields.items()]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=4,
)


@given(
    st.lists(
        st.dictionaries(st.sampled_from(["id", "total", "tags", "note", "x"]), json_values)
        | json_values,
        max_size=12,
    )
)
def test_observe_counts_presence_nulls_and_types_in_the_order_first_seen(payloads):
    shape = observe(payloads)
    counted = [
        (name, seen.present, seen.null, list(seen.types.items()))
        for name, seen in shape.fields.items()
    ]
    assert (shape.records, shape.not_objects, counted) == _observe_record_by_record(payloads)
