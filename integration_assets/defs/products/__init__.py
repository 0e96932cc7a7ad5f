"""The storefront product stream: raw extract -> staging checkpoint (gated) -> SCD2 history per SKU."""

import dagster as dg

from integration_assets.defs.products.checks import (
    product_history_well_formed,
    staging_products_gate,
)
from integration_assets.defs.products.core import product_history
from integration_assets.defs.products.extract import raw_storefront_products
from integration_assets.defs.products.staging import staging_storefront_products

products_assets = [raw_storefront_products, staging_storefront_products, product_history]
products_checks = [staging_products_gate, product_history_well_formed]

defs = dg.Definitions(assets=products_assets, asset_checks=products_checks)
