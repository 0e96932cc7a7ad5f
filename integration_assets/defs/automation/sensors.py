"""The sensor that evaluates the automation conditions of the derived layers (conditions.py)."""

import dagster as dg

SENSOR_NAME = "follow_upstream_changes"
RUN_TAGS = {"integration_assets/trigger": "automation"}

# Every asset here that carries an automation condition is evaluated; one without (e.g. a
# partitioned mart that is backfilled by hand) is left alone.
FOLLOWING_ASSETS = dg.AssetSelection.key_prefixes("core", "reporting")

follow_upstream_changes = dg.AutomationConditionSensorDefinition(
    SENSOR_NAME,
    target=FOLLOWING_ASSETS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    run_tags=RUN_TAGS,
    description=(
        "Every 30 s: rebuilds the core tables and reporting marts whose upstream changed since they "
        "were last built, once every upstream blocking check passed. What the hourly job already "
        "built in the same run is not requested again. Never requests raw extracts, staging or the "
        "delivery assets that write into the ERP, CRM and WMS."
    ),
)
