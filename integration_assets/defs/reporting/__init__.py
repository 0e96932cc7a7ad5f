"""Reporting marts: tables for people, rebuilt idempotently from core (and published to PostgreSQL
when REPORTING_DATABASE_URL is set); the open exceptions report; the integration health (success
metrics judged against contracts/health.yaml); the hourly-partitioned orders_by_hour."""

import dagster as dg

from integration_assets.defs.reporting.exceptions import open_exceptions
from integration_assets.defs.reporting.health import integration_health
from integration_assets.defs.reporting.hourly import (
    orders_by_hour,
    orders_by_hour_job,
    orders_by_hour_schedule,
)
from integration_assets.defs.reporting.marts import mart_checks, order_lifecycle, orders_per_day

defs = dg.Definitions(
    assets=[orders_per_day, order_lifecycle, open_exceptions, integration_health, orders_by_hour],
    asset_checks=mart_checks,
    jobs=[orders_by_hour_job],
    schedules=[orders_by_hour_schedule],
)
