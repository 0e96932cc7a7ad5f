"""Layer 3: the returns stream in process on scenarios/returns.yaml (storefront, payments and WMS inbox
on one clock): a completed return, a stuck one named by no_stuck_returns, and the RMA file kind staged."""

from datetime import timedelta

import dagster as dg
import pytest

from integration_assets_tests.pipeline.conftest import (
    SCENARIOS,
    check_description,
    check_outcomes,
    materialized,
)


@pytest.fixture(scope="module")
def returns_run(tmp_path_factory):
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

    tmp = tmp_path_factory.mktemp("returns")
    scenario = load_scenario(SCENARIOS / "returns.yaml")
    everything = [*defs.assets, *defs.asset_checks]
    with start_sandbox_systems(scenario, warehouse_inbox=tmp / "inbox") as systems:
        resources = {
            **client_resources(systems, scenario),
            "raw_log": RawLogResource(root=str(tmp / "raw")),
            "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
            "warehouse_inbox": WarehouseInboxResource(path=str(tmp / "inbox")),
            # Not used by the groups run here, but every asset handed over needs its resources.
            "alert_sink": AlertSinkResource(log_path=str(tmp / "alerts.log")),
        }
        systems.clock.advance(timedelta(hours=72))
        systems.storefront.warehouse.sync()  # the WMS drops what is due by the clock
        instance = dg.DagsterInstance.ephemeral()
        results = [
            dg.materialize(
                everything,
                resources=resources,
                instance=instance,
                raise_on_error=False,
                selection=dg.AssetSelection.groups(*groups),
            )
            for groups in (("warehouse",), ("orders", "payments", "finance", "returns"))
        ]
    return Warehouse(tmp / "warehouse.duckdb"), results


def rows(warehouse, query):
    with warehouse.connect(read_only=True) as con:
        return con.execute(query).fetchall()


def test_the_rma_files_are_staged_with_their_checks(returns_run):
    warehouse, (wms, _) = returns_run
    assert wms.success and "staging/warehouse/return_authorizations" in materialized(wms)
    assert all(check_outcomes(wms).values()), check_outcomes(wms)
    assert rows(
        warehouse,
        "SELECT name, status, rows FROM staging.warehouse_files "
        "WHERE kind = 'return_authorizations' ORDER BY name",
    ) == [
        ("return_authorizations_20261120T15.csv", "staged", 3),
        ("return_authorizations_20261120T16.csv", "staged", 3),
        ("return_authorizations_20261120T19.csv", "staged", 1),
    ]


def test_a_completed_return_and_a_stuck_one(returns_run):
    warehouse, (_, core) = returns_run
    assert core.success and "core/returns" in materialized(core)
    found = {
        return_id: rest
        for return_id, *rest in rows(
            warehouse,
            "SELECT return_id, source, stage, received_at IS NOT NULL, condition, "
            "refunded_at IS NOT NULL, provider_refunded_at IS NOT NULL, age_hours, flags "
            "FROM core.returns",
        )
    }
    # returned_and_refunded: every stage, refunded at the shop (+1d) and at the provider.
    assert found["RMA-5100001000-1"] == ["rma", "refunded", True, "sellable", True, True, 36.0, []]
    # returned_never_refunded: received damaged at +6h, as of +2d12h (the newest time): 54 h > 48 h.
    assert found["RMA-5100002000-2"] == [
        "rma",
        "received",
        True,
        "damaged",
        False,
        False,
        54.0,
        ["damaged", "received_not_refunded"],
    ]
    # approved_never_shipped: 55 h in approved, under the 120 h threshold.
    assert found["RMA-5100003000-3"][1] == "approved" and found["RMA-5100003000-3"][-1] == []
    # refunded_without_return: a goodwill refund, no RMA.
    (goodwill,) = [v for k, v in found.items() if k.startswith("refund:")]
    assert goodwill[:2] == ["refund_without_return", "refunded"]
    stages = dict(rows(warehouse, "SELECT stage, count(*) FROM core.returns GROUP BY stage"))
    assert stages == {"refunded": 2, "received": 1, "approved": 1}


def test_no_stuck_returns_warns_and_names_the_stuck_one(returns_run):
    _, (_, core) = returns_run
    assert check_outcomes(core)["no_stuck_returns"] is False
    assert check_description(core, "no_stuck_returns") == (
        "received_not_refunded: RMA-5100002000-2 (order 5100002000, GADGET) 54 h in received"
    )
    evaluation = next(
        e.asset_check_evaluation_data
        for e in core.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "no_stuck_returns"
    )
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["received_not_refunded"].value == 1
