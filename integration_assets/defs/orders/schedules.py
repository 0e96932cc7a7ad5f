"""The hourly batch sync: friction on purpose. Changes arrive in hourly batches, each one gated."""

import dagster as dg

from integration_assets.defs.execution import PRELOADED_WITH_GATES, forkserver_execution

hourly_sync_job = dg.define_asset_job(
    name="storefront_hourly_sync",
    selection=dg.AssetSelection.groups(
        "orders",
        "payments",
        "finance",
        "inventory",
        "products",
        "reporting",
        "returns",
        "customers",
        "delivery",
        "ops",
    ),
    description=(
        "Extract orders, payments, products and the CRM's and ERP's customer records changed since the last "
        "poll, stage and gate them, derive order events, the financial ledger, the reconciliation, the product "
        "history and the customer golden record, rebuild marts, then write what changed into the ERP, CRM "
        "and WMS through the outbox."
    ),
    # A failed run is re-executed from its failed step, at most twice (the daemon; docs/deploy.md).
    # Safe: every step is idempotent, and delivery sends nothing twice (the outbox).
    config=forkserver_execution(PRELOADED_WITH_GATES),
    tags={
        "integration_assets/trigger": "schedule",
        "dagster/max_retries": "2",
        "dagster/retry_strategy": "FROM_FAILURE",
    },
)

hourly_sync_schedule = dg.ScheduleDefinition(
    name="storefront_hourly_sync_schedule",
    job=hourly_sync_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every hour at :05, so the storefront's writes of the previous hour have settled.",
)
