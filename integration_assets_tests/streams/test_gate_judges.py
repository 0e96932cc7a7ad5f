"""The staging gate's batch rules, run through Great Expectations on small frames."""

import pandas as pd

from integration_assets.contracts import load_contract
from integration_assets.defs.orders.checks import judge_schema_drift, judge_totals, judge_volume
from integration_assets.streams.schema_drift import compare, observe

CONTRACT = load_contract("storefront_orders")


def presence(rows: int, missing: dict[str, int]) -> list[dict]:
    """`rows` payloads with every required field, `missing[name]` of them without `name`."""
    sample = {"integer": 1, "timestamp": "2026-11-20T10:00:00Z", "money": "1.00", "currency": "USD"}
    payloads = [
        {
            name: sample.get(CONTRACT.field_rule(name).type, "paid")
            for name in CONTRACT.required_fields
        }
        for _ in range(rows)
    ]
    for name, count in missing.items():
        for payload in payloads[:count]:
            del payload[name]
    return payloads


def judge(payloads: list[dict]) -> tuple[bool, str]:
    return judge_schema_drift(compare(observe(payloads), CONTRACT), CONTRACT.label)


def test_a_few_missing_fields_are_rows_to_quarantine_not_drift():
    passed, _ = judge(presence(10, {"total_price": 1}))
    assert passed


def test_a_field_missing_from_most_of_a_batch_is_drift_and_named():
    passed, reason = judge(presence(10, {"total_price": 10}))
    assert not passed
    assert "'total_price'" in reason and "10 of 10" in reason and "storefront_orders v1" in reason


def test_totals_tolerate_a_few_mismatches_but_not_many():
    few = pd.DataFrame({"totals_mismatch_minor": [0] * 19 + [500]})
    many = pd.DataFrame({"totals_mismatch_minor": [0] * 10 + [500] * 10})
    assert judge_totals(few, CONTRACT)[0]
    passed, reason = judge_totals(many, CONTRACT)
    assert not passed and reason.startswith("10 of 20 orders do not add up")


def test_volume_is_judged_against_the_trailing_median():
    history = [100, 120, 90, 110]
    assert judge_volume(1000, history, CONTRACT)[0]  # a 10x Christmas peak is normal
    passed, reason = judge_volume(5000, history, CONTRACT)
    assert not passed and "ABOVE the limit 3150" in reason
    assert judge_volume(100000, history[:2], CONTRACT)[0]  # too little history to judge
