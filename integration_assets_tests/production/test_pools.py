"""Every step of the real definitions is in the concurrency pool that its work calls for."""

import dagster as dg

from integration_assets.definitions import defs
from integration_assets.systems.pools import (
    ALL_POOLS,
    API_POOL_BY_SYSTEM,
    CRM_API_POOL,
    ERP_API_POOL,
    PAYMENTS_API_POOL,
    STOREFRONT_API_POOL,
    WAREHOUSE_POOL,
)

GRAPH = defs.resolve_asset_graph()
API_RESOURCES = set(API_POOL_BY_SYSTEM)  # the resource keys of the clients are the systems' names


def _assets_definitions() -> dict[dg.AssetKey, dg.AssetsDefinition]:
    return {key: defs.resolve_assets_def(key) for key in GRAPH.materializable_asset_keys}


def _check_definitions() -> list[dg.AssetChecksDefinition]:
    repository = defs.get_repository_def()
    return list(repository.asset_checks_defs_by_key.values())


def _pool(definition: dg.AssetsDefinition | dg.AssetChecksDefinition) -> str | None:
    return definition.node_def.pool


def test_the_pool_names_are_the_agreed_ones():
    assert ALL_POOLS == (
        "duckdb_warehouse",
        "storefront_api",
        "payments_api",
        "erp_api",
        "crm_api",
        "wms_api",
    )


def test_every_extract_that_calls_an_api_is_in_its_systems_pool():
    extracts = {
        key: definition
        for key, definition in _assets_definitions().items()
        if "api" in GRAPH.get(key).kinds and "duckdb" not in GRAPH.get(key).kinds
    }
    assert extracts, "the raw extracts carry the kind `api`"
    for key, definition in extracts.items():
        system = GRAPH.get(key).tags["source"]
        assert _pool(definition) == API_POOL_BY_SYSTEM[system], key
        assert definition.required_resource_keys & API_RESOURCES == {system}, key
        assert "warehouse" not in definition.required_resource_keys, key
    pools = {key.to_user_string(): _pool(d) for key, d in extracts.items()}
    assert pools["raw/storefront/orders"] == STOREFRONT_API_POOL
    assert pools["raw/storefront/products"] == STOREFRONT_API_POOL
    assert pools["raw/payments/payout_transactions"] == PAYMENTS_API_POOL
    assert pools["raw/erp/customers"] == ERP_API_POOL
    assert pools["raw/crm/accounts"] == CRM_API_POOL


def test_every_asset_and_check_that_opens_the_warehouse_is_in_the_warehouse_pool():
    steps = [*_assets_definitions().values(), *_check_definitions()]
    opening = [d for d in steps if "warehouse" in d.required_resource_keys]
    assert len(opening) > 30
    for definition in opening:
        assert _pool(definition) == WAREHOUSE_POOL, definition.node_def.name
    for key, definition in _assets_definitions().items():
        if "duckdb" in GRAPH.get(key).kinds:
            assert _pool(definition) == WAREHOUSE_POOL, key


def test_delivery_calls_its_target_from_inside_the_warehouse_pool():
    """A step has one pool. Delivery holds the warehouse (plan, outbox, drain) while it calls the
    ERP/CRM/WMS, so it is in duckdb_warehouse, which already lets one such step run at a time."""
    delivery = {k: d for k, d in _assets_definitions().items() if k.path[0] == "delivery"}
    assert len(delivery) == 9
    for key, definition in delivery.items():
        assert _pool(definition) == WAREHOUSE_POOL, key
        assert definition.required_resource_keys & API_RESOURCES, key


def test_the_operator_jobs_steps_are_in_the_warehouse_pool():
    for name in ("replay_dead_letters", "review_approvals"):
        job = defs.resolve_job_def(name)
        for node in job.graph.node_defs:
            assert node.pool == WAREHOUSE_POOL, (name, node.name)


def test_every_pool_in_use_is_a_known_one_and_only_the_inbox_sweep_has_none():
    steps = {d.node_def.name: _pool(d) for d in _assets_definitions().values()}
    steps.update({d.node_def.name: _pool(d) for d in _check_definitions()})
    assert {pool for pool in steps.values() if pool is not None} <= set(ALL_POOLS)
    # It reads a local folder and writes raw files only: neither an API nor DuckDB.
    assert {name for name, pool in steps.items() if pool is None} == {"raw__warehouse__files"}
