"""Asset keys and check names of the product stream (storefront products kept as an SCD2 history)."""

import dagster as dg

RAW_PRODUCTS = dg.AssetKey(["raw", "storefront", "products"])
STAGING_PRODUCTS = dg.AssetKey(["staging", "storefront", "products"])
PRODUCT_HISTORY = dg.AssetKey(["core", "products"])

STREAM = "storefront/products"
SOURCE, STREAM_NAME = STREAM.split("/")
GROUP = "products"
OWNER = "merchandising@example.com"
CONTRACT_NAME = "storefront_products"

# Blocking checks on staging: core/products reads only batches that passed every one of these.
CHECK_KEYS_AND_VALUES = "keys_unique_and_values_allowed"
CHECK_COUNT_BALANCE = "count_balance"
CHECK_REQUIRED_FIELDS = "required_fields_present"
GATING_CHECKS = (CHECK_KEYS_AND_VALUES, CHECK_COUNT_BALANCE, CHECK_REQUIRED_FIELDS)

CHECK_HISTORY_WELL_FORMED = "one_current_row_per_sku_and_no_overlaps"
