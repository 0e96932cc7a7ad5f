"""Entry point: load every domain's definitions and bind the system clients and storage.

Resources read their settings from environment variables at run time (never at import time), so the
same definitions run against the sandbox, a staging shop or production.
"""

import dagster as dg

from integration_assets.defs import (
    alerts,
    automation,
    customers,
    delivery,
    inventory,
    orders,
    payments,
    products,
    reporting,
    retention,
    returns,
    warehouse,
    watch,
    webhooks,
)
from integration_assets.storage.resources import (
    RawLogResource,
    ReportingDatabaseResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.systems.alert_sink import AlertSinkResource
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.storefront import StorefrontClient
from integration_assets.systems.wms import WmsClient


def client_resources(
    storefront_page_limit: int | None = None, **retry_settings: float
) -> dict[str, dg.ConfigurableResource]:
    """The five system clients, configured from the environment at run time.

    `retry_settings` (`max_retries`, `backoff_base_seconds`, `read_timeout_seconds`...) apply to
    every client: the chaos suite shortens the backoffs so a storm of faults takes seconds, not
    minutes, and pages the storefront in small pages to have cursors to refuse."""
    page_limit = {} if storefront_page_limit is None else {"page_limit": storefront_page_limit}
    return {
        "storefront": StorefrontClient(
            shop_url=dg.EnvVar("STOREFRONT_URL"),
            access_token=dg.EnvVar("STOREFRONT_ACCESS_TOKEN"),
            api_version=dg.EnvVar("STOREFRONT_API_VERSION"),
            **page_limit,
            **retry_settings,
        ),
        "payments": PaymentsClient(
            base_url=dg.EnvVar("PAYMENTS_URL"),
            secret_key=dg.EnvVar("PAYMENTS_SECRET_KEY"),
            **retry_settings,
        ),
        "erp": ErpClient(
            base_url=dg.EnvVar("ERP_URL"),
            client_id=dg.EnvVar("ERP_CLIENT_ID"),
            client_secret=dg.EnvVar("ERP_CLIENT_SECRET"),
            **retry_settings,
        ),
        "crm": CrmClient(
            base_url=dg.EnvVar("CRM_URL"),
            client_id=dg.EnvVar("CRM_CLIENT_ID"),
            client_secret=dg.EnvVar("CRM_CLIENT_SECRET"),
            default_owner_id=dg.EnvVar("CRM_DEFAULT_OWNER_ID"),
            **retry_settings,
        ),
        "wms": WmsClient(
            base_url=dg.EnvVar("WMS_URL"), api_key=dg.EnvVar("WMS_API_KEY"), **retry_settings
        ),
    }


RESOURCES = {
    **client_resources(),
    # Reads ALERT_WEBHOOK_URL at run time (unset: alerts go to data/alerts.log only).
    "alert_sink": AlertSinkResource(),
    "raw_log": RawLogResource(),
    "warehouse": WarehouseResource(),
    "warehouse_inbox": WarehouseInboxResource(),
    # Reads REPORTING_DATABASE_URL at run time (unset: the reporting marts stay in DuckDB only).
    "reporting_database": ReportingDatabaseResource(),
}

defs = dg.Definitions.merge(
    alerts.defs,
    automation.defs,
    customers.defs,
    delivery.defs,
    inventory.defs,
    orders.defs,
    payments.defs,
    products.defs,
    reporting.defs,
    retention.defs,
    returns.defs,
    warehouse.defs,
    watch.defs,
    webhooks.defs,
    dg.Definitions(resources=RESOURCES),
)
