"""The payments ledger (pure state): what Stripe holds for a scenario's stories at any time."""

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_assets.sandbox import SCENARIOS_DIR, ScenarioError, load_scenario
from integration_assets.sandbox.payments_ledger import PaymentsLedger, stripe_id

PAYMENTS = load_scenario(SCENARIOS_DIR / "payments.yaml")
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def ledger() -> PaymentsLedger:
    return PaymentsLedger(PAYMENTS)


def charges_of(snapshot, ledger, label):
    order_id = str(ledger.order_ids_by_label[label])
    return [c for c in snapshot.lists["charges"] if c["metadata"]["shopify_order_id"] == order_id]


def refunds_of(snapshot, ledger, label):
    order_id = str(ledger.order_ids_by_label[label])
    return [r for r in snapshot.lists["refunds"] if r["metadata"]["shopify_order_id"] == order_id]


def txn(snapshot, txn_id):
    return snapshot.by_id["balance_transactions"][txn_id]


def test_paid_event_creates_a_charge_with_fee_and_availability(ledger):
    snapshot = ledger.snapshot(PAYMENTS.clock.start + timedelta(hours=1))
    (charge,) = charges_of(snapshot, ledger, "simple")
    assert charge["amount"] == charge["amount_captured"] == 10000
    assert charge["currency"] == "usd"
    assert charge["status"] == "succeeded" and charge["paid"] and charge["captured"]
    assert charge["metadata"]["order_name"].startswith("#")
    assert charge["created"] == int((PAYMENTS.clock.start + timedelta(minutes=10)).timestamp())
    balance = txn(snapshot, charge["balance_transaction"])
    assert balance["fee"] == round(10000 * 0.029) + 30 == 320
    assert balance["net"] == 10000 - 320
    assert balance["fee_details"] == [
        {
            "amount": 320,
            "application": None,
            "currency": "usd",
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    assert balance["available_on"] == charge["created"] + 2 * 86400
    assert balance["status"] == "pending"
    assert balance["type"] == balance["reporting_category"] == "charge"
    assert balance["source"] == charge["id"]
    later = ledger.snapshot(PAYMENTS.clock.start + 3 * DAY)
    assert txn(later, charge["balance_transaction"])["status"] == "available"


def test_nothing_exists_before_it_happens(ledger):
    snapshot = ledger.snapshot(PAYMENTS.clock.start + timedelta(minutes=9))
    assert snapshot.lists["charges"] == []
    assert ledger.snapshot(PAYMENTS.clock.start + timedelta(minutes=10)).lists["charges"]


def test_edit_after_payment_charges_or_refunds_the_difference(ledger):
    snapshot = ledger.snapshot(PAYMENTS.clock.start + timedelta(hours=4))
    up = sorted(charges_of(snapshot, ledger, "edited_up"), key=lambda c: c["created"])
    assert [c["amount"] for c in up] == [4000, 1000]
    assert [c["metadata"]["cause"] for c in up] == ["payment", "order_edit"]
    assert txn(snapshot, up[1]["balance_transaction"])["fee"] == round(1000 * 0.029) + 30
    (down,) = charges_of(snapshot, ledger, "edited_down")
    (refund,) = refunds_of(snapshot, ledger, "edited_down")
    assert down["amount"] == 12000 and down["amount_refunded"] == 8000 and not down["refunded"]
    assert refund["amount"] == 8000 and refund["charge"] == down["id"]
    assert refund["metadata"]["cause"] == "order_edit"
    refund_txn = txn(snapshot, refund["balance_transaction"])
    assert (refund_txn["amount"], refund_txn["fee"], refund_txn["net"]) == (-8000, 0, -8000)
    assert refund_txn["type"] == "refund" and refund_txn["source"] == refund["id"]


def test_refunded_event_refunds_its_amount(ledger):
    before = ledger.snapshot(PAYMENTS.clock.start + timedelta(hours=19))
    assert refunds_of(before, ledger, "refunded_in_part") == []
    after = ledger.snapshot(PAYMENTS.clock.start + timedelta(hours=20))
    (refund,) = refunds_of(after, ledger, "refunded_in_part")
    (charge,) = charges_of(after, ledger, "refunded_in_part")
    assert charge["amount"] == 21000 and refund["amount"] == 10000
    assert refund["metadata"]["cause"] == "refund" and "shopify_refund_id" in refund["metadata"]
    assert charge["amount_refunded"] == 10000


def test_other_gateway_and_excluded_orders_have_no_charge(ledger):
    snapshot = ledger.snapshot(PAYMENTS.clock.start + 5 * DAY)
    for label in ("other_gateway", "excluded", "unpaid"):
        assert charges_of(snapshot, ledger, label) == []
    assert {ledger.order_ids_by_label["other_gateway"], ledger.order_ids_by_label["excluded"]} <= (
        ledger.excluded_order_ids
    )


def test_lost_dispute_withdraws_amount_and_fee(ledger):
    start = PAYMENTS.clock.start
    (charge,) = charges_of(ledger.snapshot(start + DAY), ledger, "disputed_lost")
    opened = ledger.snapshot(start + DAY)
    (dispute,) = [d for d in opened.lists["disputes"] if d["charge"] == charge["id"]]
    assert dispute["status"] == "needs_response" and dispute["reason"] == "fraudulent"
    assert dispute["amount"] == 14000
    assert opened.by_id["charges"][charge["id"]]["disputed"] is True
    (withdrawal,) = dispute["balance_transactions"]
    assert withdrawal["type"] == "adjustment" and withdrawal["reporting_category"] == "dispute"
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-14000, 1500, -15500)
    assert withdrawal["source"] == dispute["id"]
    closed = ledger.snapshot(start + 3 * DAY)
    lost = closed.by_id["disputes"][dispute["id"]]
    assert lost["status"] == "lost"
    assert [t["id"] for t in lost["balance_transactions"]] == [withdrawal["id"]]


def test_won_dispute_reverses_the_amount_but_not_the_fee(ledger):
    start = PAYMENTS.clock.start
    (charge,) = charges_of(ledger.snapshot(start + DAY), ledger, "disputed_won")
    dispute_id = next(
        d["id"]
        for d in ledger.snapshot(start + DAY).lists["disputes"]
        if d["charge"] == charge["id"]
    )
    assert ledger.snapshot(start + DAY).by_id["disputes"][dispute_id]["status"] == "needs_response"
    review = ledger.snapshot(start + DAY + timedelta(hours=12)).by_id["disputes"][dispute_id]
    assert review["status"] == "under_review"
    won = ledger.snapshot(start + 2 * DAY).by_id["disputes"][dispute_id]
    assert won["status"] == "won"
    withdrawal, reversal = won["balance_transactions"]
    assert reversal["reporting_category"] == "dispute_reversal" and reversal["type"] == "adjustment"
    assert (reversal["amount"], reversal["fee"], reversal["net"]) == (8000, 0, 8000)
    assert withdrawal["net"] + reversal["net"] == -1500  # the dispute fee is not returned


def test_every_payout_equals_the_net_of_what_it_paid_out(ledger):
    snapshot = ledger.snapshot(PAYMENTS.clock.start + 10 * DAY)
    payouts = snapshot.lists["payouts"]
    assert len(payouts) >= 3
    assert {p["currency"] for p in payouts} == {"usd", "eur"}
    for payout in payouts:
        members = [txn(snapshot, t) for t in snapshot.payout_members[payout["id"]]]
        assert payout["amount"] > 0
        assert sum(m["net"] for m in members) == payout["amount"]
        assert all(m["currency"] == payout["currency"] for m in members)
        assert all(m["available_on"] <= payout["created"] for m in members)
        own = txn(snapshot, payout["balance_transaction"])
        assert (own["type"], own["amount"], own["net"]) == (
            "payout",
            -payout["amount"],
            -payout["amount"],
        )
        assert payout["arrival_date"] == payout["created"] + 2 * 86400
        assert payout["status"] == "paid" and payout["automatic"] is True
    # Every non-payout transaction is paid out exactly once.
    paid = [t for p in payouts for t in snapshot.payout_members[p["id"]]]
    assert len(paid) == len(set(paid))
    others = {t["id"] for t in snapshot.lists["balance_transactions"] if t["type"] != "payout"}
    assert set(paid) == others


def test_payout_status_moves_with_time(ledger):
    payout = ledger.payouts[0]
    from datetime import UTC, datetime

    created = datetime.fromtimestamp(payout.created, UTC)
    assert ledger.snapshot(created).by_id["payouts"][payout.id]["status"] == "pending"
    assert ledger.snapshot(created + timedelta(hours=2)).by_id["payouts"][payout.id]["status"] == (
        "in_transit"
    )
    assert ledger.snapshot(created + 2 * DAY).by_id["payouts"][payout.id]["status"] == "paid"
    assert payout.id not in ledger.snapshot(created - timedelta(seconds=1)).by_id["payouts"]


def test_ids_are_deterministic_and_stripe_shaped(ledger):
    again = PaymentsLedger(load_scenario(SCENARIOS_DIR / "payments.yaml"))
    assert [c.id for c in again.charges] == [c.id for c in ledger.charges]
    assert [t.id for t in again.txns] == [t.id for t in ledger.txns]
    assert [p.id for p in again.payouts] == [p.id for p in ledger.payouts]
    prefixes = {
        "ch": ledger.charges,
        "re": ledger.refunds,
        "dp": ledger.disputes,
        "po": ledger.payouts,
    }
    for prefix, records in prefixes.items():
        for record in records:
            assert record.id.startswith(f"{prefix}_") and len(record.id) == len(prefix) + 25
    all_ids = [r.id for records in prefixes.values() for r in records] + [t.id for t in ledger.txns]
    assert len(all_ids) == len(set(all_ids))
    other_seed = PaymentsLedger(
        dataclasses.replace(PAYMENTS, payments=dataclasses.replace(PAYMENTS.payments, seed=1))
    )
    assert other_seed.charges[0].id != ledger.charges[0].id
    assert stripe_id("ch", 1, "x") == stripe_id("ch", 1, "x") != stripe_id("ch", 2, "x")


def test_lists_are_newest_first():
    ledger = PaymentsLedger(PAYMENTS)
    snapshot = ledger.snapshot(PAYMENTS.clock.start + 10 * DAY)
    for objects in snapshot.lists.values():
        keys = [(o["created"], o["id"]) for o in objects]
        assert keys == sorted(keys, reverse=True)


def test_default_scenario_payments_section():
    scenario = load_scenario(SCENARIOS_DIR / "default.yaml")
    ledger = PaymentsLedger(scenario)
    labels = ledger.order_ids_by_label
    assert labels["note_changed"] in ledger.excluded_order_ids
    assert not ledger.charges_by_order.get(labels["note_changed"])
    assert {d.outcome for d in ledger.disputes} == {"won", "lost"}
    assert len(ledger.payouts) >= 2
    snapshot = ledger.snapshot(scenario.clock.start + 5 * DAY)
    for payout in snapshot.lists["payouts"]:
        members = [txn(snapshot, t) for t in snapshot.payout_members[payout["id"]]]
        assert sum(m["net"] for m in members) == payout["amount"]
    # Unpaid, voided and fixture orders never reach Stripe.
    for label in ("created_only", "cancelled_before_payment", "malformed_total_price"):
        assert not ledger.charges_by_order.get(labels[label])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    volume_seed=st.integers(0, 10_000),
    payments_seed=st.integers(0, 10_000),
    available_after_days=st.integers(0, 3),
    every_hours=st.sampled_from([6, 12, 24, 48]),
    fee_fixed=st.integers(0, 500),
)
def test_payouts_always_equal_their_transactions(
    volume_seed, payments_seed, available_after_days, every_hours, fee_fixed
):
    payments = dataclasses.replace(
        PAYMENTS.payments,
        seed=payments_seed,
        available_after_days=available_after_days,
        fee_fixed=fee_fixed,
        payouts=dataclasses.replace(PAYMENTS.payments.payouts, every=timedelta(hours=every_hours)),
    )
    scenario = dataclasses.replace(
        PAYMENTS,
        volume=dataclasses.replace(PAYMENTS.volume, seed=volume_seed),
        payments=payments,
    )
    ledger = PaymentsLedger(scenario)
    snapshot = ledger.snapshot(scenario.clock.start + 20 * DAY)
    for payout in snapshot.lists["payouts"]:
        members = [txn(snapshot, t) for t in snapshot.payout_members[payout["id"]]]
        assert payout["amount"] > 0
        assert sum(m["net"] for m in members) == payout["amount"]
    # Per order, Stripe holds charges minus refunds = what the shop collected, never negative.
    for charges in ledger.charges_by_order.values():
        ids = {c.id for c in charges}
        refunded = sum(r.amount for r in ledger.refunds if r.charge in ids)
        assert sum(c.amount for c in charges) - refunded >= 0
        for charge in charges:
            assert sum(r.amount for r in ledger.refunds if r.charge == charge.id) <= charge.amount


def _write(tmp_path: Path, payments_yaml: str) -> Path:
    source = (SCENARIOS_DIR / "payments.yaml").read_text()
    head = source.split("\npayments:\n")[0]
    path = tmp_path / "scenario.yaml"
    path.write_text(head + "\npayments:\n" + payments_yaml + "\ndemo: {polls: 1, step: 1h}\n")
    return path


@pytest.mark.parametrize(
    ("payments_yaml", "message"),
    [
        ("  fees: 3", "payments.fees: unknown key"),
        ("  secret_key: pk_test_nope", "payments.secret_key: expected a Stripe secret key"),
        ("  exclude_orders: [nobody]", "payments.exclude_orders[0]: unknown order 'nobody'"),
        (
            "  disputes: [{order: unpaid, opened_at: '+1d'}]",
            "payments.disputes[0].order: order 'unpaid' is never charged",
        ),
        (
            "  disputes: [{order: simple, opened_at: '+1d', outcome: lost}]",
            "payments.disputes[0].closed_at: required when outcome is 'lost'",
        ),
        (
            "  disputes: [{order: simple, opened_at: '+1m'}]",
            "payments.disputes[0].opened_at: the dispute opens before the charge exists",
        ),
        (
            "  disputes: [{order: simple, opened_at: '+1d', reason: angry}]",
            "payments.disputes[0].reason: unknown reason 'angry'",
        ),
        ("  payouts: {every: 1d, at_hour_utc: 24}", "payments.payouts.at_hour_utc: must be 0..23"),
        (
            "  faults: [{kind: nope, after_requests: 1}]",
            "payments.faults[0].kind: unknown payments fault",
        ),
    ],
)
def test_invalid_payments_sections_fail_at_load(tmp_path, payments_yaml, message):
    with pytest.raises(ScenarioError, match=".*") as error:
        load_scenario(_write(tmp_path, payments_yaml))
    assert message in str(error.value)
    assert str(tmp_path) in str(error.value)
