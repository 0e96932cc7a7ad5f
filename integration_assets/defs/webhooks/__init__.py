"""Event-driven runs: newly landed webhook batches start runs of the staging and core assets they affect."""

import dagster as dg

from integration_assets.defs.webhooks.sensors import webhook_batches_sensor

defs = dg.Definitions(sensors=[webhook_batches_sensor])
