"""The financial ledger: every money movement at the payment provider as a signed entry.

Entries are derived from the provider's balance transactions (Stripe's `balance_transaction`), the
one record that says what actually moved in the merchant's balance: sales, refunds, fees, dispute
holds and reversals, adjustments and payouts. Amounts are integer minor units, signed from the
merchant balance's point of view (a sale is +, its fee is -, a payout to the bank is -).

This module is the reference: the rules one transaction at a time, in Python. The asset applies them
set-based in DuckDB (`storage/payments_ledger.py`), and a generated-scenario test holds the two equal.

Invariants the tests hold this module to:
- the same transactions in any order, with any duplication, give the same entries and balances;
- the balance transactions a payout paid out sum (by `net`) to exactly the payout's amount.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Stripe `reporting_category` (and `type` as a fallback) -> our entry kind for the gross amount.
GROSS_KIND = {
    "charge": "sale",
    "refund": "refund",
    "dispute": "dispute_hold",
    "dispute_reversal": "dispute_reversal",
    "payout": "payout",
    "adjustment": "adjustment",
    "fee": "fee",
}


@dataclass(frozen=True, order=True)
class LedgerEntry:
    entry_id: str
    kind: str
    amount_minor: int
    currency: str
    occurred_at: int
    balance_transaction: str
    source: str | None
    payout: str | None


def _kind(transaction: Mapping[str, Any]) -> str:
    category = transaction.get("reporting_category") or transaction.get("type")
    return GROSS_KIND.get(category, "adjustment")


def entries_for_transaction(
    transaction: Mapping[str, Any], payout: str | None = None
) -> list[LedgerEntry]:
    """One balance transaction -> its gross entry plus one fee entry when it carries a fee."""
    txn_id = transaction["id"]
    currency = str(transaction["currency"]).lower()
    created = int(transaction["created"])
    source = transaction.get("source")
    kind = _kind(transaction)
    fee = int(transaction.get("fee") or 0)
    entries = [
        LedgerEntry(
            f"{txn_id}:gross",
            kind,
            int(transaction["amount"]),
            currency,
            created,
            txn_id,
            source,
            payout,
        )
    ]
    if fee:
        fee_kind = "dispute_fee" if kind == "dispute_hold" else "fee"
        entries.append(
            LedgerEntry(f"{txn_id}:fee", fee_kind, -fee, currency, created, txn_id, source, payout)
        )
    return entries


def build_ledger(
    transactions: Iterable[Mapping[str, Any]], payout_of: Mapping[str, str] | None = None
) -> tuple[list[LedgerEntry], int]:
    """All entries, each once, in a stable order; and how many duplicate transactions were dropped."""
    seen: dict[str, Mapping[str, Any]] = {}
    duplicates = 0
    for transaction in transactions:
        if transaction["id"] in seen:
            duplicates += 1
            continue
        seen[transaction["id"]] = transaction
    payout_of = payout_of or {}
    entries = [
        entry
        for txn_id in sorted(seen)
        for entry in entries_for_transaction(seen[txn_id], payout_of.get(txn_id))
    ]
    entries.sort(key=lambda e: (e.occurred_at, e.entry_id))
    return entries, duplicates


def balances(entries: Iterable[LedgerEntry]) -> dict[tuple[str, str], int]:
    """Sum per (currency, kind)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for entry in entries:
        totals[(entry.currency, entry.kind)] += entry.amount_minor
    return dict(sorted(totals.items()))


@dataclass(frozen=True)
class PayoutCheck:
    payout: str
    currency: str
    payout_amount_minor: int
    transactions: int
    sum_of_net_minor: int

    @property
    def holds(self) -> bool:
        return self.payout_amount_minor == self.sum_of_net_minor


def check_payouts(
    payouts: Iterable[Mapping[str, Any]],
    transactions_by_payout: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[PayoutCheck]:
    """For each payout: does it equal the sum of `net` of the balance transactions it paid out?

    The payout's own balance transaction (type `payout`) is not part of what it paid out.
    """
    checks = []
    for payout in payouts:
        paid = {
            t["id"]: t
            for t in transactions_by_payout.get(payout["id"], [])
            if (t.get("type") != "payout")
        }
        checks.append(
            PayoutCheck(
                payout=payout["id"],
                currency=str(payout["currency"]).lower(),
                payout_amount_minor=int(payout["amount"]),
                transactions=len(paid),
                sum_of_net_minor=sum(int(t["net"]) for t in paid.values()),
            )
        )
    return checks


SHOPIFY_PAYMENTS_CATEGORY = {
    "charge": "charge",
    "refund": "refund",
    "dispute": "dispute",
    "payout": "payout",
}


def from_shopify_payments(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """A Shopify Payments balance transaction (decimal strings, `payout_id`) in the provider-neutral shape.

    Shopify Payments types such as debit, credit, reserve and adjustment are balance adjustments.
    """
    from integration_assets.streams.money import to_minor_units
    from integration_assets.streams.timestamps import parse_utc

    currency = transaction["currency"]
    return {
        "id": f"shopify_txn_{transaction['id']}",
        "type": transaction["type"],
        "reporting_category": SHOPIFY_PAYMENTS_CATEGORY.get(transaction["type"], "adjustment"),
        "amount": to_minor_units(transaction["amount"], currency),
        "fee": to_minor_units(transaction["fee"], currency),
        "net": to_minor_units(transaction["net"], currency),
        "currency": currency.lower(),
        "created": int(parse_utc(transaction["processed_at"]).timestamp()),
        "source": f"{transaction.get('source_type')}_{transaction.get('source_id')}",
    }


def net_consistency_errors(transactions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Balance transactions whose net is not amount - fee (a provider or fixture inconsistency)."""
    return [
        t["id"] for t in transactions if int(t["amount"]) - int(t.get("fee") or 0) != int(t["net"])
    ]
