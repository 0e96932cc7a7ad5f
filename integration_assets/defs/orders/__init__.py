"""The storefront order stream: raw extract -> staging checkpoint (gated) -> order events -> current state."""

import dagster as dg

from integration_assets.defs.orders.checks import staging_orders_gate
from integration_assets.defs.orders.core import (
    every_source_order_known,
    order_events,
    order_events_balance,
    orders_current,
    orders_current_matches_heads,
)
from integration_assets.defs.orders.extract import raw_storefront_orders
from integration_assets.defs.orders.schedules import hourly_sync_job, hourly_sync_schedule
from integration_assets.defs.orders.staging import staging_storefront_orders

defs = dg.Definitions(
    assets=[raw_storefront_orders, staging_storefront_orders, order_events, orders_current],
    asset_checks=[
        staging_orders_gate,
        order_events_balance,
        orders_current_matches_heads,
        every_source_order_known,
    ],
    jobs=[hourly_sync_job],
    schedules=[hourly_sync_schedule],
)
