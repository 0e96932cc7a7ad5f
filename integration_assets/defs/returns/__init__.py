"""The returns stream: RMA (warehouse) -> receipt (warehouse) -> refund (storefront, payment provider)."""

import dagster as dg

from integration_assets.defs.returns.core import no_stuck_returns, returns

defs = dg.Definitions(assets=[returns], asset_checks=[no_stuck_returns])
