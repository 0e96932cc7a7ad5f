"""The payment provider's stream: raw lists -> gated staging -> financial ledger -> three-way reconciliation."""

import dagster as dg

from integration_assets.defs.payments.checks import staging_payments_gate
from integration_assets.defs.payments.core import (
    financial_ledger,
    payment_reconciliation,
    payouts_add_up,
    unexplained_within_tolerance,
)
from integration_assets.defs.payments.extract import raw_payments_assets, raw_payout_transactions
from integration_assets.defs.payments.staging import staging_payments_objects

payments_assets = [
    *raw_payments_assets,
    raw_payout_transactions,
    staging_payments_objects,
    financial_ledger,
    payment_reconciliation,
]
payments_checks = [staging_payments_gate, payouts_add_up, unexplained_within_tolerance]

defs = dg.Definitions(assets=payments_assets, asset_checks=payments_checks)
