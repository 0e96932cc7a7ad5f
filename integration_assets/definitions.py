"""Entry point: load every domain's definitions and bind the system clients and storage.

Resources read their settings from environment variables at run time (never at import time), so the
same definitions run against the sandbox, a staging shop or production.
"""

import dagster as dg

from integration_assets.defs import orders, reporting
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.systems.storefront import StorefrontClient

RESOURCES = {
    "storefront": StorefrontClient(
        shop_url=dg.EnvVar("STOREFRONT_URL"),
        access_token=dg.EnvVar("STOREFRONT_ACCESS_TOKEN"),
        api_version=dg.EnvVar("STOREFRONT_API_VERSION"),
    ),
    "raw_log": RawLogResource(),
    "warehouse": WarehouseResource(),
}

defs = dg.Definitions.merge(orders.defs, reporting.defs, dg.Definitions(resources=RESOURCES))
