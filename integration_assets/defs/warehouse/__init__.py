"""The warehouse (WMS) stream: CSV file drops -> raw by sha256 -> staged whole or quarantined whole."""

import dagster as dg

from integration_assets.defs.warehouse.assets import (
    raw_warehouse_files,
    staging_warehouse_files,
    staging_warehouse_gate,
)
from integration_assets.defs.warehouse.sensors import warehouse_file_sync, warehouse_inbox_sensor

defs = dg.Definitions(
    assets=[raw_warehouse_files, staging_warehouse_files],
    asset_checks=[staging_warehouse_gate],
    jobs=[warehouse_file_sync],
    sensors=[warehouse_inbox_sensor],
)
