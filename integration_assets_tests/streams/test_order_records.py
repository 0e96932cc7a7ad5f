"""Staging rules for one order payload: typed exactly, or quarantined with the rule it broke."""

import copy

import pytest

from integration_assets.contracts import load_contract
from integration_assets.streams.money import MoneyFormatError, to_minor_units
from integration_assets.streams.order_records import StagedOrder, Violation, stage_order
from integration_assets_tests.conftest import load_fixture_order

CONTRACT = load_contract("storefront_orders")


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("199.00", "USD", 19900),
        (195.66, "USD", 19566),
        (12, "USD", 1200),
        ("1000", "JPY", 1000),
        ("1.234", "KWD", 1234),
    ],
)
def test_money_is_exact(value, currency, minor):
    assert to_minor_units(value, currency) == minor


@pytest.mark.parametrize("value", ["12,50", "1e3", "abc", "", None, True, "1.005", float("nan")])
def test_money_refuses_what_it_would_have_to_guess(value):
    with pytest.raises(MoneyFormatError):
        to_minor_units(value, "USD")


def test_real_order_is_typed_in_utc_and_minor_units(real_order):
    staged = stage_order(real_order, CONTRACT)
    assert isinstance(staged, StagedOrder)
    assert staged.order_id == 450789469
    assert staged.updated_at.isoformat() == "2008-01-10T16:00:00+00:00"  # 11:00-05:00
    assert (staged.total_price_minor, staged.total_tax_minor, staged.currency) == (
        40994,
        1194,
        "USD",
    )
    assert staged.totals_mismatch_minor == 0
    assert set(staged.snapshot["lines"]) == {"466157049", "518995019", "703073504"}


def test_known_quirks_of_real_payloads_are_flagged_not_fixed():
    # shopify_python_api/orders.json: subtotal ignores the discount, and line items are not included.
    staged = stage_order(load_fixture_order("shopify_python_api/orders.json"), CONTRACT)
    assert isinstance(staged, StagedOrder)
    assert "subtotal_excludes_discounts" in staged.quality_flags
    assert "partial_representation:line_items" in staged.quality_flags
    assert "lines" not in staged.snapshot
    assert staged.totals_mismatch_minor == 0  # 597.00 - 10.00 + 11.94 = 598.94
    # shopify_python_api/order.json: a TENOFF discount code but total_discounts 0.00.
    assert (
        "discount_codes_disagree_with_total_discounts"
        in stage_order(load_fixture_order("shopify_python_api/order.json"), CONTRACT).quality_flags
    )


@pytest.mark.parametrize(
    ("mutate", "rule", "field"),
    [
        (lambda o: o.update(total_price="12,50"), "bad_money", "total_price"),
        (lambda o: o.update(currency="DOLLARS"), "bad_currency", "currency"),
        (lambda o: o.pop("updated_at"), "required_field_missing", "updated_at"),
        (lambda o: o.update(updated_at="2008-01-10 11:00"), "bad_timestamp", "updated_at"),
        (lambda o: o.update(id="not-a-number"), "wrong_type", "id"),
        (
            lambda o: o.update(financial_status="sort_of_paid"),
            "value_not_allowed",
            "financial_status",
        ),
        (
            lambda o: o["line_items"][0].update(quantity=-1),
            "below_minimum",
            "line_items.0.quantity",
        ),
        (
            lambda o: o["line_items"][1].update(price=None),
            "required_field_null",
            "line_items.1.price",
        ),
    ],
)
def test_broken_rules_are_named_with_their_field(real_order, mutate, rule, field):
    order = copy.deepcopy(real_order)
    mutate(order)
    violation = stage_order(order, CONTRACT)
    assert isinstance(violation, Violation)
    assert (violation.rule, violation.field) == (rule, field)
    assert field.split(".")[-1] in violation.message


def test_a_non_object_payload_is_a_violation_not_a_crash():
    assert stage_order(["not", "an", "order"], CONTRACT).rule == "not_an_object"


def test_totals_that_do_not_add_up_are_measured(real_order):
    order = copy.deepcopy(real_order)
    order["total_price"] = "419.94"
    staged = stage_order(order, CONTRACT)
    assert staged.totals_mismatch_minor == 1000
    assert "totals_do_not_add_up" in staged.quality_flags


@pytest.mark.parametrize(
    ("source_name", "kept"),
    [("web", "web"), ("pos", "pos"), ("5806573", "5806573"), (5806573, "5806573"), (None, None)],
)
def test_the_sales_channel_is_kept_but_not_in_the_diffed_snapshot(real_order, source_name, kept):
    payload = copy.deepcopy(real_order)
    payload["source_name"] = source_name
    staged = stage_order(payload, CONTRACT)
    assert isinstance(staged, StagedOrder)
    assert staged.source_name == kept
    assert "source_name" not in staged.snapshot  # a channel is not an order event
    web = stage_order({**payload, "source_name": "web"}, CONTRACT)
    assert web.snapshot == staged.snapshot
