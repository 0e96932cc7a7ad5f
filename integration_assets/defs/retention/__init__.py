"""Retention and compaction (storage/retention.py): `ops/retention`, its daily job and schedule."""

import dagster as dg

from integration_assets.defs.retention.assets import RETENTION, ops_retention

retention_daily = dg.define_asset_job(
    name="retention_daily",
    selection=dg.AssetSelection.assets(RETENTION),
    description="Compress old raw batch files, archive loaded audit files, prune old audit rows.",
    tags={"integration_assets/trigger": "schedule"},
)

retention_schedule = dg.ScheduleDefinition(
    name="retention_daily_schedule",
    job=retention_daily,
    cron_schedule="15 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 03:15 UTC, away from the hourly sync's :05.",
)

defs = dg.Definitions(
    assets=[ops_retention], jobs=[retention_daily], schedules=[retention_schedule]
)
