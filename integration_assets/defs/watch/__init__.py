"""Watching the sources: ops/source_signals after ops/audit_log in the hourly sync, and on its own
schedule too, so a sync that failed on a source change (a 403 stops the extraction, and everything
after it) still has its exchanges loaded and its signal raised within the hour. The same job
measures the integration's health (reporting/integration_health), which a blocked sync skips too."""

import dagster as dg

from integration_assets.defs.delivery.names import AUDIT_LOG
from integration_assets.defs.reporting.health import INTEGRATION_HEALTH
from integration_assets.defs.watch.assets import ops_source_signals
from integration_assets.defs.watch.names import SOURCE_SIGNALS, WATCH_JOB

watch_sources = dg.define_asset_job(
    name=WATCH_JOB,
    selection=dg.AssetSelection.assets(AUDIT_LOG, SOURCE_SIGNALS, INTEGRATION_HEALTH),
    description=(
        "Load the audit trail and raise (or clear) source-change signals: a credential close to "
        "expiry, a permission lost, an API version retiring, an endpoint moved, a data-model change; "
        "then measure the integration's health (reporting/integration_health)."
    ),
    tags={"integration_assets/trigger": "schedule"},
)

watch_sources_schedule = dg.ScheduleDefinition(
    name="watch_sources_schedule",
    job=watch_sources,
    cron_schedule="35 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every hour at :35, half an hour after the hourly sync (which runs the same assets when it "
        "gets that far): a sync stopped by a source change still gets its signal."
    ),
)

defs = dg.Definitions(
    assets=[ops_source_signals], jobs=[watch_sources], schedules=[watch_sources_schedule]
)
