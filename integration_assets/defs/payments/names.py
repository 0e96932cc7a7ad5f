"""Asset keys, streams and check names of the payments domain (the payment provider, Stripe)."""

import dagster as dg

SOURCE = "payments"
OWNER = "finance-ops@example.com"
# Stripe list endpoints we read, and how far back each poll re-reads: objects change after they are
# created (a charge is refunded, a dispute is won, a payout is paid) and Stripe lists filter by
# `created` only, so the lookback must cover how long an object keeps changing.
RESOURCES = {
    "charges": 7,
    "refunds": 7,
    "balance_transactions": 3,
    "disputes": 120,
    "payouts": 14,
}
PAYOUT_TRANSACTIONS = "payout_transactions"
CONTRACTS = {resource: f"payments_{resource}" for resource in RESOURCES}
CONTRACTS[PAYOUT_TRANSACTIONS] = "payments_balance_transactions"
STREAMS = {resource: f"{SOURCE}/{resource}" for resource in [*RESOURCES, PAYOUT_TRANSACTIONS]}

RAW = {
    resource: dg.AssetKey(["raw", SOURCE, resource])
    for resource in [*RESOURCES, PAYOUT_TRANSACTIONS]
}
STAGING_PAYMENTS = dg.AssetKey(["staging", SOURCE, "objects"])
FINANCIAL_LEDGER = dg.AssetKey(["core", "financial_ledger"])
RECONCILIATION = dg.AssetKey(["core", "payment_reconciliation"])

# Blocking checks on staging: core reads only the batches that passed every one of these.
CHECK_COUNT_BALANCE = "count_balance"
CHECK_KEYS_AND_VALUES = "keys_unique_and_values_allowed"
CHECK_REQUIRED_FIELDS = "required_fields_present"
GATING_CHECKS = (CHECK_COUNT_BALANCE, CHECK_KEYS_AND_VALUES, CHECK_REQUIRED_FIELDS)
CHECK_PAYOUTS_ADD_UP = "payouts_equal_their_transactions"
CHECK_UNEXPLAINED = "unexplained_differences_within_tolerance"
