"""Asset keys, check names and raw streams of the warehouse (WMS) file-drop stream."""

import dagster as dg

from integration_assets.storage.warehouse import WAREHOUSE_POOL

GROUP = "warehouse"
OWNER = "warehouse-ops@example.com"
POOL = WAREHOUSE_POOL

RAW_FILES = dg.AssetKey(["raw", "warehouse", "files"])
STAGING_FILES = dg.AssetKey(["staging", "warehouse", "files"])
STAGING_BY_KIND = {
    "shipments": dg.AssetKey(["staging", "warehouse", "shipments"]),
    "receipts": dg.AssetKey(["staging", "warehouse", "receipts"]),
    "stock_counts": dg.AssetKey(["staging", "warehouse", "stock_counts"]),
    "return_receipts": dg.AssetKey(["staging", "warehouse", "return_receipts"]),
    "return_authorizations": dg.AssetKey(["staging", "warehouse", "return_authorizations"]),
}
TABLE_BY_KIND = {
    "shipments": "staging.wms_shipments",
    "receipts": "staging.wms_receipts",
    "stock_counts": "staging.wms_stock_counts",
    "return_receipts": "staging.wms_return_receipts",
    "return_authorizations": "staging.wms_return_authorizations",
}

# The raw log: every landed file as-is (one batch per file), and one drop log per inbox sweep
# recording every new file seen and what became of it (landed, or a duplicate of a landed file).
SOURCE = "warehouse"
FILES_STREAM = "files"
DROPS_STREAM = "drops"

FILE_STATUS_STAGED = "staged"
FILE_STATUS_QUARANTINED = "quarantined"
FILE_STATUS_DUPLICATE = "duplicate"

# Blocking checks.
CHECK_COUNT_BALANCE = (
    "count_balance"  # on each kind: rows in file = rows staged, or whole file quarantined
)
CHECK_SCHEMA = (
    "schema_matches_file_kind"  # on each kind: the table has the kind's columns and types
)
CHECK_FILES_ACCOUNTED = (
    "files_accounted_for"  # on staging/warehouse/files: dropped = landed + dups ...
)

JOB_NAME = "warehouse_file_sync"
SENSOR_NAME = "warehouse_inbox_sensor"
