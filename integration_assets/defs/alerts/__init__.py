"""Alerts: run failures, failed checks, dead letters and schema drift, posted to the alert sink with flood control."""

import dagster as dg

from integration_assets.defs.alerts.sensors import (
    alert_on_dead_letters,
    alert_on_failed_checks,
    alert_on_run_failure,
    alert_on_schema_drift,
)

defs = dg.Definitions(
    sensors=[
        alert_on_run_failure,
        alert_on_failed_checks,
        alert_on_dead_letters,
        alert_on_schema_drift,
    ]
)
