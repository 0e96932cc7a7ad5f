"""The pure order model: lifecycles over time, edits, money that adds up, determinism, fixtures."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_assets.sandbox.generator import generate_stories
from integration_assets.sandbox.scenario import (
    PACKAGE_FIXTURES_DIR,
    SCENARIOS_DIR,
    VolumeSpec,
    load_scenario,
)
from integration_assets.sandbox.storefront_orders import OrderBook

TINY = load_scenario(SCENARIOS_DIR / "tiny.yaml")
DEFAULT = load_scenario(SCENARIOS_DIR / "default.yaml")
FAR_FUTURE = timedelta(days=30)


def assert_totals_add_up(order: dict) -> None:
    d = Decimal
    shipping = sum((d(line["price"]) for line in order["shipping_lines"]), d("0"))
    line_items = d(order["total_line_items_price"])
    discounts = d(order["total_discounts"])
    tax = d(order["total_tax"])
    name = order["name"]
    assert d(order["subtotal_price"]) == line_items - discounts, name
    assert d(order["total_price"]) == line_items - discounts + tax + shipping, name
    refunded = sum(
        (d(t["amount"]) for refund in order["refunds"] for t in refund["transactions"]), d("0")
    )
    assert d(order["current_total_price"]) == d(order["total_price"]) - refunded, name
    assert d(order["current_total_price"]) >= 0, name
    if not order["refunds"]:
        # Totals follow current_quantity (edits), not the quantity first ordered.
        assert line_items == sum(
            (d(line["price"]) * line["current_quantity"] for line in order["line_items"]), d("0")
        ), name
    assert (
        sum(
            (
                d(tax_line["price"])
                for line in order["line_items"]
                for tax_line in line["tax_lines"]
            ),
            d("0"),
        )
        == tax
    ), name
    for field in ("total_price", "subtotal_price", "total_tax", "current_total_price"):
        assert len(order[field].split(".")[1]) == 2, (name, field)
    if order["financial_status"] == "refunded":
        assert order["current_total_price"] == "0.00", name


def test_an_order_moves_through_its_life_as_the_clock_moves() -> None:
    book = OrderBook(TINY)
    order_id = book.ids_by_label["happy_path"]
    start = TINY.clock.start
    assert book.order_at(order_id, start - timedelta(seconds=1)) is None
    seen = []
    for hours in (0, 1, 5):
        served = book.order_at(order_id, start + timedelta(hours=hours, minutes=30))
        seen.append(
            (served.body["financial_status"], served.body["fulfillment_status"], served.updated_at)
        )
    assert [s[:2] for s in seen] == [("pending", None), ("paid", None), ("paid", "fulfilled")]
    assert seen[0][2] < seen[1][2] < seen[2][2]
    fulfilled = book.order_at(order_id, start + timedelta(hours=6)).body
    assert fulfilled["updated_at"] == "2026-11-20T14:00:00-05:00"
    shipped = {item["sku"]: item["quantity"] for item in fulfilled["fulfillments"][0]["line_items"]}
    assert shipped == {"IPOD2008GREEN": 1, "CASE-SLIM": 2}
    assert {line["fulfillable_quantity"] for line in fulfilled["line_items"]} == {0}


def test_edits_show_as_current_quantity_and_new_lines() -> None:
    book = OrderBook(TINY)
    order = book.order_at(book.ids_by_label["edited"], TINY.clock.start + FAR_FUTURE).body
    lines = {line["sku"]: line for line in order["line_items"]}
    assert (lines["IPOD2008RED"]["quantity"], lines["IPOD2008RED"]["current_quantity"]) == (2, 1)
    assert lines["IPOD2008RED"]["fulfillable_quantity"] == 1
    removed = lines["CASE-SLIM"]
    assert (removed["quantity"], removed["current_quantity"], removed["fulfillable_quantity"]) == (
        1,
        0,
        0,
    )
    added = lines["IPOD2008GREEN"]
    assert added["id"] not in {line["id"] for line in order["line_items"] if line is not added}
    assert (added["quantity"], added["current_quantity"]) == (1, 1)
    # 1 x 199 (red) + 1 x 199 (green) = 398.00, minus the 10.00 discount, plus 8% tax.
    assert order["total_line_items_price"] == "398.00"
    assert order["subtotal_price"] == "388.00"
    assert order["total_tax"] == "31.04"
    assert order["total_price"] == "419.04"
    assert_totals_add_up(order)


def test_partial_refund_and_cancellation() -> None:
    book = OrderBook(TINY)
    end = TINY.clock.start + FAR_FUTURE
    refunded = book.order_at(book.ids_by_label["refunded"], end)
    assert refunded.body["financial_status"] == "partially_refunded"
    assert refunded.closed and refunded.status == "closed"
    refund = refunded.body["refunds"][0]
    assert refund["refund_line_items"][0]["quantity"] == 1
    assert refund["refund_line_items"][0]["restock_type"] == "return"
    assert refund["transactions"][0]["kind"] == "refund"
    assert refund["transactions"][0]["amount"] == "214.92"  # 199.00 + 8% tax
    assert refunded.body["line_items"][0]["current_quantity"] == 1
    kinds = [t["kind"] for t in refunded.transactions]
    assert kinds == ["sale", "refund"]
    assert_totals_add_up(refunded.body)
    cancelled = book.order_at(book.ids_by_label["cancelled"], end)
    assert cancelled.status == "cancelled"
    assert cancelled.body["cancel_reason"] == "customer"
    assert cancelled.body["financial_status"] == "voided"
    assert [t["kind"] for t in cancelled.transactions] == ["authorization", "void"]


def test_every_order_in_the_default_scenario_adds_up_at_every_poll() -> None:
    book = OrderBook(DEFAULT)
    corrupted = {
        book.ids_by_label[label] for label in book.ids_by_label if label.startswith("malformed")
    }
    fixture_ids = {450789469, 1073459962}
    checked = 0
    for hours in range(0, 72, 4):
        for served in book.orders_at(DEFAULT.clock.start + timedelta(hours=hours)):
            if served.id in corrupted or served.id in fixture_ids:
                continue
            assert_totals_add_up(served.body)
            checked += 1
    assert checked > 3000


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31))
def test_generated_orders_add_up_for_any_seed(seed: int) -> None:
    volume = dataclasses.replace(DEFAULT.volume, seed=seed, orders=60)
    scenario = dataclasses.replace(DEFAULT, volume=volume, stories=(), fixture_orders=())
    book = OrderBook(scenario)
    for served in book.orders_at(scenario.clock.start + FAR_FUTURE):
        assert_totals_add_up(served.body)
        assert served.body["updated_at"] >= served.body["created_at"]


def _volume(seed: int) -> VolumeSpec:
    return dataclasses.replace(DEFAULT.volume, seed=seed, orders=120)


def test_generator_is_deterministic_per_seed() -> None:
    first = generate_stories(_volume(1), DEFAULT.catalog, DEFAULT.customers)
    again = generate_stories(_volume(1), DEFAULT.catalog, DEFAULT.customers)
    other = generate_stories(_volume(2), DEFAULT.catalog, DEFAULT.customers)
    assert first == again
    assert first != other

    # And so is what is served from it, down to the bytes.
    def served(scenario):
        book = OrderBook(scenario)
        return json.dumps([o.body for o in book.orders_at(scenario.clock.start + FAR_FUTURE)])

    assert served(DEFAULT) == served(DEFAULT)


def test_generator_mix_is_realistic() -> None:
    stories = generate_stories(_volume(7), DEFAULT.catalog, DEFAULT.customers)
    kinds = [story.label.split(":")[1] for story in stories]
    assert kinds.count("fulfilled") > len(kinds) * 0.4
    for kind in ("cancelled", "edited", "refunded_full", "partially_fulfilled"):
        assert kind in kinds
    spread = [story.events[0].at for story in stories]
    assert max(spread) - min(spread) > timedelta(hours=20)


def test_fixture_orders_are_served_as_is_and_replaced_by_later_entries() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "real_fixtures.yaml")
    book = OrderBook(scenario)
    start = scenario.clock.start

    def fixture(relative: str) -> dict:
        body = json.loads((PACKAGE_FIXTURES_DIR / relative).read_text())
        return body["order"] if "order" in body else body["orders"][0]

    assert book.order_at(450789469, start).body == fixture("shopify_python_api/order.json")
    assert book.order_at(1073459962, start) is None
    later = book.order_at(450789469, start + timedelta(hours=2))
    assert later.body == fixture("shopify_python_api/orders.json")
    assert later.body["updated_at"] == book.order_at(450789469, start).body["updated_at"]
    final = book.order_at(450789469, start + timedelta(hours=5))
    assert final.body == fixture("monei_shopify_api_node/order/res/cancel.json")
    assert final.body["cancelled_at"] is None and final.status == "open"


def test_corrupt_events_change_the_body_but_not_what_the_api_filters_on() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "malformed.yaml")
    book = OrderBook(scenario)
    end = scenario.clock.start + FAR_FUTURE
    ids = book.ids_by_label
    assert book.order_at(ids["bad_total_price_comma"], end).body["total_price"] == "12,50"
    assert book.order_at(ids["bad_negative_quantity"], end).body["line_items"][0]["quantity"] == -1
    no_updated_at = book.order_at(ids["bad_missing_updated_at"], end)
    assert "updated_at" not in no_updated_at.body and no_updated_at.updated_at is not None
    assert book.order_at(ids["bad_id_not_a_number"], end).body["id"] == "not-a-number"
    later = book.order_at(ids["goes_bad_later"], scenario.clock.start + timedelta(hours=4))
    assert later.body["total_price"] != "NaN"
    assert book.order_at(ids["goes_bad_later"], end).body["total_price"] == "NaN"


def test_schema_change_renames_from_its_time_on() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "schema_drift.yaml")
    book = OrderBook(scenario)
    change = scenario.faults[0].at
    orders = book.orders_at(scenario.clock.start + FAR_FUTURE)
    before = [o for o in orders if o.updated_at < change]
    after = [o for o in orders if o.updated_at >= change]
    assert before and after
    assert all("total_price" in o.body and "total_price_amount" not in o.body for o in before)
    assert all("total_price_amount" in o.body and "total_price" not in o.body for o in after)


def test_snapshots_are_cached_per_time() -> None:
    book = OrderBook(DEFAULT)
    moment = DEFAULT.clock.start + timedelta(hours=5)
    assert book.orders_at(moment) is book.orders_at(moment)


def test_a_packed_version_answers_the_same_bytes_as_encoding_its_body():
    """Versions are kept as compressed answer bytes; a page joined from them must be exactly what
    encoding the decoded bodies gives (generated orders, real fixtures, corrupted bodies alike)."""
    from integration_assets.sandbox.storefront_app import json_response

    for scenario in (DEFAULT, load_scenario(SCENARIOS_DIR / "real_fixtures.yaml")):
        book = OrderBook(scenario)
        orders = book.orders_at(scenario.clock.start + FAR_FUTURE)
        assert orders
        joined = b'{"orders":[%s]}' % b",".join(order.body_json for order in orders)
        assert joined == json_response({"orders": [order.body for order in orders]}).get_data()
        for order in orders:  # each access decodes a fresh copy: a caller cannot edit the version
            order.body["id"] = "changed"
            assert order.body["id"] != "changed"
