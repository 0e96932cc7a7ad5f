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
# The batches one tick takes at most (oldest first); the rest wait for the next tick. Each tick
# requests at most one run per group of streams (ASSETS_OF_STREAM), however many batches it took, so
# a Christmas peak of thousands of deliveries a minute is a few runs a tick, not a run per delivery.
MAX_BATCHES_PER_TICK = 5_000

# A webhook run is a handful of small steps that the warehouse pool serializes anyway: one process
# for the run instead of one per step (each costs seconds of start-up) brings the latency from
# minutes to seconds. Pools still apply (the in-process executor claims the same slots).
RUN_CONFIG = {"execution": {"config": {"in_process": {}}}}

TAG_TRIGGER = "integration_assets/trigger"
TAG_PROVIDER = "webhooks/provider"
TAG_TOPIC = "webhooks/topic"  # the topics of the run's batches, comma-separated
TAG_BATCH = "webhooks/batch_id"  # the newest batch of the run (the run key ends with it)
TAG_FIRST_BATCH = "webhooks/first_batch_id"
TAG_BATCH_COUNT = "webhooks/batches"
TAG_STREAM = "webhooks/staged_as"  # the staging streams of the run's batches, comma-separated

# Staging stream -> the assets one of its webhook batches affects: the staging asset (its blocking
# checks run with it and gate promotion in the same run) and the core assets that promote it. Not
# core/payment_reconciliation: it joins orders and payments, and follows the ledger by automation.
ASSETS_OF_STREAM: dict[str, tuple[dg.AssetKey, ...]] = {
    ORDERS_STREAM: (STAGING_ORDERS, ORDER_EVENTS, ORDERS_CURRENT),
    PRODUCTS_STREAM: (STAGING_PRODUCTS, PRODUCT_HISTORY),
    **{stream: (STAGING_PAYMENTS, FINANCIAL_LEDGER) for stream in PAYMENTS_STREAMS.values()},
}
