"""The webhook sensor's name, its run tags, and the assets a webhook batch of each staging stream affects."""

import dagster as dg

from integration_assets.defs.orders.names import ORDER_EVENTS, ORDERS_CURRENT, STAGING_ORDERS
from integration_assets.defs.orders.names import STREAM as ORDERS_STREAM
from integration_assets.defs.payments.names import (
    FINANCIAL_LEDGER,
    STAGING_PAYMENTS,
)
from integration_assets.defs.payments.names import (
    STREAMS as PAYMENTS_STREAMS,
)
from integration_assets.defs.products.names import PRODUCT_HISTORY, STAGING_PRODUCTS
from integration_assets.defs.products.names import STREAM as PRODUCTS_STREAM

SENSOR_NAME = "webhook_batches_sensor"
MINIMUM_INTERVAL_SECONDS = 15
# A backlog (the sensor switched on after hours of deliveries) is requested this many batches per tick.
MAX_RUN_REQUESTS_PER_TICK = 50

# A webhook run is a handful of small steps that the warehouse pool serializes anyway: one process
# for the run instead of one per step (each costs seconds of start-up) brings the latency from
# minutes to seconds. Pools still apply (the in-process executor claims the same slots).
RUN_CONFIG = {"execution": {"config": {"in_process": {}}}}

TAG_TRIGGER = "integration_assets/trigger"
TAG_PROVIDER = "webhooks/provider"
TAG_TOPIC = "webhooks/topic"
TAG_BATCH = "webhooks/batch_id"
TAG_STREAM = "webhooks/staged_as"

# Staging stream -> the assets one of its webhook batches affects: the staging asset (its blocking
# checks run with it and gate promotion in the same run) and the core assets that promote it. Not
# core/payment_reconciliation: it joins orders and payments, and follows the ledger by automation.
ASSETS_OF_STREAM: dict[str, tuple[dg.AssetKey, ...]] = {
    ORDERS_STREAM: (STAGING_ORDERS, ORDER_EVENTS, ORDERS_CURRENT),
    PRODUCTS_STREAM: (STAGING_PRODUCTS, PRODUCT_HISTORY),
    **{stream: (STAGING_PAYMENTS, FINANCIAL_LEDGER) for stream in PAYMENTS_STREAMS.values()},
}
