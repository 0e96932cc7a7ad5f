"""Writing into the working systems through the outbox, and the operator's tools around it."""

import dagster as dg

from integration_assets.defs.delivery.assets import DELIVERY_ASSETS, DELIVERY_KEYS
from integration_assets.defs.delivery.jobs import replay_dead_letters, review_approvals
from integration_assets.defs.delivery.ops_assets import build_outbox_asset, ops_audit_log

defs = dg.Definitions(
    assets=[*DELIVERY_ASSETS, build_outbox_asset(DELIVERY_KEYS), ops_audit_log],
    jobs=[replay_dead_letters, review_approvals],
)
