"""Three-way reconciliation: every difference classified by a rule, with its amount."""

from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams.reconciliation import OrderMoney, ProviderMoney, reconcile


def order(order_id=1, total=10_000, refunded=0, status="paid"):
    return OrderMoney(order_id, "USD", total, refunded, status)


def charge(order_id=1, charged=10_000, refunded=0, fees=0, disputed=0, unsettled=0):
    return ProviderMoney(order_id, "usd", charged, refunded, fees, disputed, unsettled)


def rules(result):
    return sorted((d.rule, d.amount_minor) for d in result.differences)


def test_a_settled_order_matches_and_its_fee_is_explained():
    result = reconcile([order()], [charge(fees=320)])
    assert rules(result) == [("fee", -320), ("matched", 0)]
    assert result.unexplained() == []


def test_money_not_yet_in_a_payout_is_not_yet_settled():
    assert ("not_yet_settled", 9_680) in rules(
        reconcile([order()], [charge(fees=320, unsettled=9_680)])
    )


def test_a_partial_refund_on_both_sides_is_explained():
    result = reconcile(
        [order(refunded=2_500, status="partially_refunded")], [charge(refunded=2_500)]
    )
    assert rules(result) == [("matched", 0), ("partial_refund", 2_500)]


def test_a_lost_dispute_is_explained_with_its_amount():
    result = reconcile([order()], [charge(disputed=10_000)])
    assert ("dispute", -10_000) in rules(result) and not result.unexplained()


def test_rounding_within_tolerance():
    assert rules(reconcile([order(total=10_001)], [charge()])) == [("rounding", 1)]


def test_missing_on_either_side_is_listed_for_a_person():
    result = reconcile([order(1), order(2, status="pending")], [charge(3, charged=700)])
    assert rules(result) == [
        ("missing_on_provider", 10_000),
        ("missing_on_storefront", 700),
        ("no_payment_expected", 0),
    ]
    assert result.unexplained_minor() == 10_700


def test_an_amount_mismatch_names_both_sides():
    # an edit after payment raised the total but the extra charge never happened
    result = reconcile([order(total=12_000)], [charge()])
    [mismatch] = result.unexplained()
    assert (mismatch.rule, mismatch.amount_minor) == ("amount_mismatch", 2_000)
    assert "storefront net 12000 vs provider net 10000" in mismatch.detail


def test_refunded_at_the_storefront_but_not_at_the_provider_is_a_mismatch():
    [mismatch] = reconcile(
        [order(refunded=3_000, status="partially_refunded")], [charge()]
    ).unexplained()
    assert mismatch.amount_minor == -3_000


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(0, 50_000), st.integers(0, 50_000)),
        max_size=20,
        unique_by=lambda t: t[0],
    )
)
def test_every_id_is_classified_and_input_order_does_not_matter(rows):
    orders = [order(i, total=t) for i, t, _ in rows]
    charges = [charge(i, charged=c) for i, _, c in rows if c]
    forward, backward = reconcile(orders, charges), reconcile(orders[::-1], charges[::-1])
    assert forward.differences == backward.differences
    assert {d.order_id for d in forward.differences} == {i for i, _, _ in rows}
    for i, total, charged in rows:
        if charged and abs(total - charged) > 1:
            assert any(
                d.order_id == i
                and d.rule == "amount_mismatch"
                and d.amount_minor == total - charged
                for d in forward.differences
            )


def test_an_order_paid_through_another_gateway_is_not_expected_at_the_provider():
    paid_in_cash = OrderMoney(1, "USD", 5_000, 0, "paid", gateway="manual")
    via_provider = OrderMoney(2, "USD", 5_000, 0, "paid", gateway="shopify_payments")
    result = reconcile(
        [paid_in_cash, via_provider], [], provider_gateways=frozenset({"shopify_payments"})
    )
    assert rules(result) == [("missing_on_provider", 5_000), ("paid_outside_provider", 0)]


def test_a_charge_for_an_order_staging_quarantined_is_named_as_such():
    result = reconcile([], [charge(7, charged=2_149)], quarantined_orders=frozenset({7}))
    [difference] = result.unexplained()
    assert (difference.rule, difference.amount_minor) == ("storefront_record_quarantined", 2_149)
    assert "ops.quarantine" in difference.detail


def test_a_charge_for_an_order_the_storefront_calls_unpaid_is_a_status_mismatch():
    result = reconcile([order(status="pending")], [charge()])
    [difference] = result.unexplained()
    assert (difference.rule, difference.amount_minor) == ("status_mismatch", 10_000)


def test_when_the_paid_version_was_quarantined_the_mismatch_says_so():
    result = reconcile([order(status="pending")], [charge()], quarantined_orders=frozenset({1}))
    assert [(d.rule, d.amount_minor) for d in result.unexplained()] == [
        ("storefront_record_quarantined", 10_000)
    ]


def test_real_stripe_charge_and_refund_reconcile_as_a_full_refund():
    import json
    from pathlib import Path

    fixtures = (
        Path(__file__).resolve().parents[2]
        / "integration_assets"
        / "sandbox"
        / "fixtures"
        / "stripe"
    )
    real = json.loads((fixtures / "fixtures3.json").read_text())["resources"]
    charge_obj, refund_obj = real["charge"], real["refund"]
    assert refund_obj["charge"] == charge_obj["id"]
    provider = ProviderMoney(1, charge_obj["currency"], charge_obj["amount"], refund_obj["amount"])
    result = reconcile([OrderMoney(1, "USD", 100, 100, "refunded")], [provider])
    assert rules(result) == [("full_refund", 100), ("matched", 0)]
