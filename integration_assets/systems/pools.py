"""The Dagster concurrency pools: one per external system's API, and one for the DuckDB warehouse.

A step names one pool (`pool=` on its asset or op). The instance admits at most the pool's limit of
steps at a time across all runs (`concurrency.pools.default_limit: 1` in both dagster.yaml files;
raise one with `dagster instance concurrency set <pool> <n>`), so a system's rate limit holds however
many runs are in flight. A step that writes DuckDB is in WAREHOUSE_POOL, whatever else it calls: DuckDB
admits one writing process, so that pool must stay at 1 (docs/deploy.md).
"""

from integration_assets.storage.warehouse import WAREHOUSE_POOL

STOREFRONT_API_POOL = "storefront_api"
PAYMENTS_API_POOL = "payments_api"
ERP_API_POOL = "erp_api"
CRM_API_POOL = "crm_api"
WMS_API_POOL = "wms_api"

# The external system an extract reads (the `source` tag of its asset) -> the pool of its API.
API_POOL_BY_SYSTEM = {
    "storefront": STOREFRONT_API_POOL,
    "payments": PAYMENTS_API_POOL,
    "erp": ERP_API_POOL,
    "crm": CRM_API_POOL,
    "wms": WMS_API_POOL,
}

ALL_POOLS = (WAREHOUSE_POOL, *API_POOL_BY_SYSTEM.values())

__all__ = [
    "ALL_POOLS",
    "API_POOL_BY_SYSTEM",
    "CRM_API_POOL",
    "ERP_API_POOL",
    "PAYMENTS_API_POOL",
    "STOREFRONT_API_POOL",
    "WAREHOUSE_POOL",
    "WMS_API_POOL",
]
