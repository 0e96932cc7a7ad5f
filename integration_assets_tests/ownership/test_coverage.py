"""Every column of every core table belongs to a registry attribute (with a system of record and an
owner) or is declared lineage; checked on a warehouse the pipeline really built."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from integration_assets.contracts.ownership import OWNERSHIP_FILE, load_ownership
from integration_assets.definitions import defs
from integration_assets.sandbox import load_scenario
from integration_assets.sandbox.server import start_sandbox_systems
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.alert_sink import AlertSinkResource
from integration_assets_tests.sandbox_clients import client_resources

SCENARIOS = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "scenarios"
REGISTRY = load_ownership()


def core_columns(warehouse: Warehouse) -> dict[str, list[str]]:
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'core' ORDER BY table_name, ordinal_position"
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(f"core.{table}", []).append(column)
    return tables


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory) -> Warehouse:
    """The tiny scenario over a day, every asset that writes core (no deliveries needed)."""
    tmp = tmp_path_factory.mktemp("coverage")
    scenario = load_scenario(SCENARIOS / "tiny.yaml")
    with start_sandbox_systems(scenario, warehouse_inbox=tmp / "inbox") as systems:
        resources = {
            **client_resources(systems, scenario),
            "alert_sink": AlertSinkResource(log_path=str(tmp / "alerts.log")),
            "raw_log": RawLogResource(root=str(tmp / "raw")),
            "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
            "warehouse_inbox": WarehouseInboxResource(path=str(tmp / "inbox")),
        }
        instance = dg.DagsterInstance.ephemeral()
        systems.clock.advance(timedelta(hours=24))
        for groups in (
            ("warehouse",),
            (
                "orders",
                "payments",
                "finance",
                "inventory",
                "customers",
                "products",
                "returns",
                "reporting",  # the marts keep core.order_timing
            ),
        ):
            result = dg.materialize(
                [*defs.assets, *defs.asset_checks],
                resources=resources,
                instance=instance,
                raise_on_error=False,
                selection=dg.AssetSelection.groups(*groups),
            )
            assert result.success, [e.message for e in result.all_events if e.is_failure]
    return Warehouse(tmp / "warehouse.duckdb")


def test_every_core_column_has_an_attribute_with_a_system_of_record_and_an_owner(built_warehouse):
    tables = core_columns(built_warehouse)
    # the streams' core tables are all there (a test that saw no table would prove nothing)
    assert {
        "core.customers",
        "core.orders_current",
        "core.financial_ledger",
        "core.inventory_ledger",
        "core.returns",
        "core.product_history",
    } <= set(tables)
    assert REGISTRY.coverage_gaps(tables) == []
    for table, columns in tables.items():
        entity = REGISTRY.entity_of_table(table)
        for column in columns:
            if column in REGISTRY.lineage_columns and column not in entity.columns():
                continue
            attribute = REGISTRY.attribute_of_column(entity.name, column)
            assert attribute.system in REGISTRY.systems, f"{table}.{column}"
            assert attribute.owner.email, f"{table}.{column}"
    # every table the registry claims exists: a renamed table would leave its entity describing nothing
    claimed = {table for entity in REGISTRY.entities.values() for table in entity.tables}
    assert claimed <= set(tables), sorted(claimed - set(tables))


def test_a_gap_is_named_by_table_and_column():
    tables = {
        "core.orders_current": ["order_id", "total_price_minor", "gift_wrap", "raw_ref"],
        "core.coupons": ["code"],
    }
    gaps = REGISTRY.coverage_gaps(tables)
    assert gaps == [
        f"core.coupons: no entity lists this table under `tables` in {OWNERSHIP_FILE.name}",
        "core.orders_current.gift_wrap: no attribute of entity 'order' holds it, and it is not a "
        "lineage column: add it to entities.order.attributes (with its system and owner) or to "
        "lineage_columns",
    ]


def test_every_delivery_asset_declares_what_its_writes_carry():
    from integration_assets.defs.delivery.assets import SPECS

    assert len(SPECS) >= 9
    for spec in SPECS:
        delivery = REGISTRY.delivery(spec.target, spec.entity)
        assert delivery.fields, f"{spec.target}/{spec.entity}"
        for field in delivery.fields.values():
            for entity, name in field.carries:
                attribute = REGISTRY.attribute(entity, name)
                assert attribute.system and attribute.owner.email
