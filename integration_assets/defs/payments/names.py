"""Asset keys, streams and check names of the payments domain (the payment provider, Stripe)."""

import dagster as dg

SOURCE = "payments"
OWNER = "finance-ops@example.com"
# Stripe list endpoints we read, and how far back each poll re-reads: objects change after they are
# created (a charge is refunded, a dispute is won, a payout is paid) and Stripe lists filter by
# `created` only, so the lookback must cover how long an object keeps changing.
HOUR, DAY = 3_600, 86_400
# Each list endpoint and how far before the newest `created` seen each poll re-reads it (seconds): as
# long as its objects keep changing in ways the pipeline reads. Charges are refunded, disputed and
# settled, refunds settle, disputes are won or lost months later, payouts are paid days later. A
# balance transaction is created once and only its `status` follows (pending until `available_on`),
# which nothing downstream reads (settlement is read from the payout's own transactions): an hour of
# overlap covers a late listing, and the poll costs the hour's new transactions, not three days'.
RESOURCES = {
    "charges": 7 * DAY,
    "refunds": 7 * DAY,
    "balance_transactions": HOUR,
    "disputes": 120 * DAY,
    "payouts": 14 * DAY,
}
# Streams whose changes are read from Stripe's event log (`GET /v1/events?types[]=...`) once a first
# listing has landed: each poll reads the events since the last one (less an hour of overlap), not
# the whole lookback again, so it costs the hour's changes. Each event's `data.object` is the object
# as it stood then; staging stages it like a listed one. Stripe keeps events 30 days: a stream
# whose last batch is older than EVENTS_USABLE_FOR lists its lookback again instead.
CHANGE_EVENTS = {
    "charges": (
        "charge.succeeded",
        "charge.failed",
        "charge.pending",
        "charge.captured",
        "charge.refunded",
        "charge.updated",
        "charge.expired",
    ),
}
EVENTS_OVERLAP = HOUR
EVENTS_USABLE_FOR = 29 * DAY
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
