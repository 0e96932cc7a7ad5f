"""The set-based financial ledger and payout checks (storage/payments_ledger.py) equal the reference
rules (streams/financial_ledger.py) on generated balance transactions: every reporting category, fees
and none, a dispute's fee, transactions paid out or not, a payout's own transaction, versions
re-staged in later batches, and a batch the gate did not pass (never read)."""

from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_assets.defs.payments.names import GATING_CHECKS
from integration_assets.storage.payments_ledger import load_latest, rebuild_ledger
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.financial_ledger import build_ledger, check_payouts

CATEGORIES = (
    "charge",
    "refund",
    "dispute",
    "dispute_reversal",
    "payout",
    "adjustment",
    "fee",
    "other",
)

transactions = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from([f"txn_{n}" for n in range(12)]),
            "reporting_category": st.sampled_from(CATEGORIES),
            "amount": st.integers(-5000, 5000),
            "fee": st.sampled_from([0, 0, 30, 125]),
            "currency": st.sampled_from(["usd", "EUR"]),
            "created": st.integers(1_797_000_000, 1_797_100_000),
            "source": st.sampled_from(["ch_1", "re_2", "dp_3", None]),
            "payout": st.sampled_from(["po_1", "po_2", None]),
            "batch": st.integers(0, 2),  # batch 2 failed the gate
        }
    ),
    max_size=15,
)
payouts = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["po_1", "po_2"]),
            "amount": st.integers(0, 9000),
            "batch": st.integers(0, 2),
        }
    ),
    max_size=3,
)


def _payload(txn: dict) -> dict:
    kind = "payout" if txn["reporting_category"] == "payout" else "charge"
    return {
        "id": txn["id"],
        "object": "balance_transaction",
        "type": kind,
        "reporting_category": txn["reporting_category"],
        "amount": txn["amount"],
        "fee": txn["fee"],
        "net": txn["amount"] - txn["fee"],
        "currency": txn["currency"],
        "created": txn["created"],
        "source": txn["source"],
    }


def _stage(
    con, resource: str, payload: dict, batch: int, index: int, parent: str | None = None
) -> None:
    con.execute(
        "INSERT OR IGNORE INTO staging.payments_objects VALUES "
        "(?, ?, ?, ?, ?, 'raw', ?, NULL, 'usd', NULL, NULL, ?, ?, 1, 'run', ?)",
        [
            resource,
            payload["id"],
            f"{batch}:{index}",
            f"b{batch}",
            index,
            datetime(2026, 12, 14),
            parent,
            orjson.dumps(payload).decode(),
            datetime(2026, 12, 14),
        ],
    )


def _gate(con) -> None:
    for batch, passed in (("b0", True), ("b1", True), ("b2", False)):
        for check in GATING_CHECKS:
            con.execute(
                "INSERT INTO ops.batch_gates VALUES ('payments/test', ?, ?, ?, '', 'run', ?)",
                [batch, check, passed, datetime(2026, 12, 14)],
            )


def _newest(rows: list[tuple[int, int, dict]]) -> dict:
    """The newest version per id among the batches the gate passed (batch, then position)."""
    newest: dict = {}
    for batch, _index, payload in sorted(rows, key=lambda r: (r[0], r[1])):
        if batch < 2:
            newest[payload["id"]] = payload
    return newest


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return Warehouse(tmp_path_factory.mktemp("payments") / "warehouse.duckdb")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(transactions, payouts)
def test_the_set_based_ledger_equals_the_reference(warehouse, txns, payout_rows):
    staged, memberships = [], []
    with warehouse.connect() as con:
        con.begin()  # rolled back: each example starts from empty tables
        _gate(con)
        for index, txn in enumerate(txns):
            _stage(con, "balance_transactions", _payload(txn), txn["batch"], index)
            staged.append((txn["batch"], index, _payload(txn)))
            if txn["payout"]:
                _stage(
                    con, "payout_transactions", _payload(txn), txn["batch"], index, txn["payout"]
                )
                memberships.append((txn["batch"], index, txn["payout"], _payload(txn)))
        for index, payout in enumerate(payout_rows):
            body = {
                "id": payout["id"],
                "amount": payout["amount"],
                "currency": "usd",
                "status": "paid",
            }
            _stage(con, "payouts", body, payout["batch"], 100 + index)
        load_latest(con, GATING_CHECKS)
        figures = rebuild_ledger(con)
        entries = con.execute(
            "SELECT entry_id, kind, amount_minor, currency, epoch(occurred_at), balance_transaction, source, payout "
            "FROM core.financial_ledger"
        ).fetchall()
        checks = con.execute(
            "SELECT payout, currency, payout_amount_minor, transactions, sum_of_net_minor, holds FROM core.payout_checks"
        ).fetchall()
        con.rollback()

    newest = _newest(staged)
    by_payout: dict[str, dict] = {}
    for batch, _index, payout, payload in sorted(memberships, key=lambda m: (m[0], m[1])):
        if batch < 2:
            by_payout.setdefault(payout, {})[payload["id"]] = payload
    payout_of = {
        txn_id: payout for payout, members in sorted(by_payout.items()) for txn_id in members
    }
    expected_entries, _ = build_ledger(newest.values(), payout_of)
    assert [(e, k, a, c, int(t), b, s, p) for e, k, a, c, t, b, s, p in entries] == [
        (
            e.entry_id,
            e.kind,
            e.amount_minor,
            e.currency,
            e.occurred_at,
            e.balance_transaction,
            e.source,
            e.payout,
        )
        for e in expected_entries
    ]
    newest_payouts = _newest(
        [
            (p["batch"], 100 + i, {"id": p["id"], "amount": p["amount"], "currency": "usd"})
            for i, p in enumerate(payout_rows)
        ]
    )
    expected_checks = check_payouts(
        sorted(newest_payouts.values(), key=lambda p: p["id"]),
        {payout: list(members.values()) for payout, members in by_payout.items()},
    )
    assert [tuple(row) for row in checks] == [
        (c.payout, c.currency, c.payout_amount_minor, c.transactions, c.sum_of_net_minor, c.holds)
        for c in expected_checks
    ]
    assert figures.balance_transactions == len(newest) == figures.gross_entries
