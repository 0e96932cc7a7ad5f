"""Reporting marts: tables for people, rebuilt idempotently from core; and the open exceptions report."""

import dagster as dg

from integration_assets.defs.reporting.exceptions import open_exceptions
from integration_assets.defs.reporting.marts import mart_checks, order_lifecycle, orders_per_day

defs = dg.Definitions(
    assets=[orders_per_day, order_lifecycle, open_exceptions], asset_checks=mart_checks
)
