"""The financial ledger and payouts: order-independent, duplicate-proof, and payouts add up."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams.financial_ledger import (
    balances,
    build_ledger,
    check_payouts,
    from_shopify_payments,
    net_consistency_errors,
)

REAL = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "fixtures"


def txn(
    txn_id: str, category: str, amount: int, fee: int = 0, created: int = 1_700_000_000
) -> dict:
    return {
        "id": txn_id,
        "type": "adjustment" if category.startswith("dispute") else category,
        "reporting_category": category,
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "currency": "usd",
        "created": created,
        "source": f"src_{txn_id}",
    }


DAY = [
    txn("txn_1", "charge", 10_000, 320, 1),
    txn("txn_2", "charge", 5_000, 175, 2),
    txn("txn_3", "refund", -2_000, 0, 3),
    txn("txn_4", "dispute", -5_000, 1_500, 4),
    txn("txn_5", "dispute_reversal", 5_000, 0, 5),
    txn("txn_6", "payout", -11_005, 0, 6),
]


def test_each_movement_becomes_signed_entries():
    entries, duplicates = build_ledger(DAY)
    assert duplicates == 0
    assert balances(entries) == {
        ("usd", "dispute_fee"): -1_500,
        ("usd", "dispute_hold"): -5_000,
        ("usd", "dispute_reversal"): 5_000,
        ("usd", "fee"): -495,
        ("usd", "payout"): -11_005,
        ("usd", "refund"): -2_000,
        ("usd", "sale"): 15_000,
    }
    assert (
        sum(e.amount_minor for e in entries) == 0
    )  # everything charged was paid out, net of the rest


@settings(max_examples=200, deadline=None)
@given(st.permutations(range(len(DAY))), st.lists(st.integers(0, len(DAY) - 1), max_size=10))
def test_same_movements_in_any_order_with_duplicates_give_the_same_ledger(order, repeats):
    reference, _ = build_ledger(DAY)
    entries, duplicates = build_ledger([DAY[i] for i in order] + [DAY[i] for i in repeats])
    assert entries == reference
    assert duplicates == len(repeats)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-50_000, 50_000), st.integers(0, 3_000)), min_size=1, max_size=30
    )
)
def test_a_payout_of_its_transactions_always_equals_their_net(movements):
    paid = [
        txn(f"txn_{i}", "charge" if amount >= 0 else "refund", amount, fee)
        for i, (amount, fee) in enumerate(movements)
    ]
    payout = {"id": "po_1", "currency": "usd", "amount": sum(t["net"] for t in paid)}
    [check] = check_payouts([payout], {"po_1": [*paid, txn("txn_po", "payout", -payout["amount"])]})
    assert check.holds and check.transactions == len(paid)


def test_a_payout_that_does_not_equal_its_transactions_is_caught():
    [check] = check_payouts([{"id": "po_1", "currency": "usd", "amount": 99}], {"po_1": DAY[:2]})
    assert not check.holds and check.sum_of_net_minor == 9_680 + 4_825


def test_real_stripe_balance_transaction_enters_the_ledger():
    real = json.loads((REAL / "stripe" / "fixtures3.json").read_text())["resources"]
    entries, _ = build_ledger([real["balance_transaction"]])
    assert [(e.kind, e.amount_minor, e.currency) for e in entries] == [("sale", 100, "usd")]


def test_real_shopify_payout_transactions_do_not_add_up_and_we_say_so():
    body = json.loads(
        (REAL / "shopify" / "shopify_python_api" / "payouts_transactions.json").read_text()
    )
    common = [from_shopify_payments(t) for t in body["transactions"]]
    payout_txn = next(t for t in body["transactions"] if t["type"] == "payout")
    payout = {
        "id": "po",
        "currency": "usd",
        "amount": -int(round(float(payout_txn["amount"]) * 100)),
    }
    [check] = check_payouts([payout], {"po": common})
    assert (check.payout_amount_minor, check.sum_of_net_minor, check.holds) == (4_190, 8_138, False)
    assert net_consistency_errors(common), (
        "the fixture has a transaction whose net is not amount - fee"
    )
