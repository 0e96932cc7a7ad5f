"""The inventory stream: one ledger of stock movements from the order stream and the warehouse's files."""

import dagster as dg

from integration_assets.defs.inventory.ledger import drift_explained, inventory_ledger, no_oversell

defs = dg.Definitions(assets=[inventory_ledger], asset_checks=[no_oversell, drift_explained])
