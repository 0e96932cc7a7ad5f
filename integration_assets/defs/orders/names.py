"""Asset keys and check names of the order stream, shared by assets, checks, jobs, the CLI and tests."""

import dagster as dg

RAW_ORDERS = dg.AssetKey(["raw", "storefront", "orders"])
STAGING_ORDERS = dg.AssetKey(["staging", "storefront", "orders"])
ORDER_EVENTS = dg.AssetKey(["core", "order_events"])
ORDERS_CURRENT = dg.AssetKey(["core", "orders_current"])

STREAM = "storefront/orders"
SOURCE, STREAM_NAME = STREAM.split("/")
OWNER = "ecommerce-ops@example.com"

# Blocking checks on staging: a batch is promoted to core only when every one of these passed for it.
CHECK_REQUIRED_FIELDS = "required_fields_present"
CHECK_KEYS_AND_VALUES = "keys_unique_and_values_allowed"
CHECK_TOTALS = "totals_add_up"
CHECK_VOLUME = "volume_within_expected_range"
CHECK_COUNT_BALANCE = "count_balance"
GATING_CHECKS = (
    CHECK_REQUIRED_FIELDS,
    CHECK_KEYS_AND_VALUES,
    CHECK_TOTALS,
    CHECK_VOLUME,
    CHECK_COUNT_BALANCE,
)
CHECK_KNOWN_QUIRKS = "known_quirks_flagged"

CHECK_FOLD_MATCHES_HEADS = "events_fold_to_current_state"
CHECK_CORE_BALANCE = "versions_accounted_for"
CHECK_NO_ORDER_MISSING = "every_source_order_known"
