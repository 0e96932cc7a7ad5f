"""Reporting marts: tables for people, rebuilt idempotently from core."""

import dagster as dg

from integration_assets.defs.reporting.marts import mart_checks, order_lifecycle, orders_per_day

defs = dg.Definitions(assets=[orders_per_day, order_lifecycle], asset_checks=mart_checks)
