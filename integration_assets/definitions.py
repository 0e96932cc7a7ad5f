"""Entry point: load every domain's definitions and bind the system clients and storage.

Resources read their settings from environment variables at run time (never at import time), so the
same definitions run against the sandbox, a staging shop or production.
"""

import dagster as dg

from integration_assets.defs import (
    inventory,
    orders,
    payments,
    products,
    reporting,
    returns,
    warehouse,
)
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.storefront import StorefrontClient

RESOURCES = {
    "storefront": StorefrontClient(
        shop_url=dg.EnvVar("STOREFRONT_URL"),
        access_token=dg.EnvVar("STOREFRONT_ACCESS_TOKEN"),
        api_version=dg.EnvVar("STOREFRONT_API_VERSION"),
    ),
    "payments": PaymentsClient(
        base_url=dg.EnvVar("PAYMENTS_URL"), secret_key=dg.EnvVar("PAYMENTS_SECRET_KEY")
    ),
    "raw_log": RawLogResource(),
    "warehouse": WarehouseResource(),
    "warehouse_inbox": WarehouseInboxResource(),
}

defs = dg.Definitions.merge(
    inventory.defs,
    orders.defs,
    payments.defs,
    products.defs,
    reporting.defs,
    returns.defs,
    warehouse.defs,
    dg.Definitions(resources=RESOURCES),
)
