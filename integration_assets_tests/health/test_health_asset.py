"""reporting/integration_health on the hand-worked scenario: its table, one check per metric that
fails naming the owner, the owners view and the report's summary."""

from __future__ import annotations

import dagster as dg
import pytest

from integration_assets.contracts.ownership import load_ownership
from integration_assets.defs.reporting.health import (
    HEALTH_TABLE,
    INTEGRATION_HEALTH,
    integration_health,
    read_health_table,
)
from integration_assets.health.judge import summary_lines
from integration_assets.health.metrics import METRICS
from integration_assets.owners import owner_views
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets_tests.health.scenario import build_health_warehouse


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    path = tmp_path_factory.mktemp("health") / "warehouse.duckdb"
    warehouse = build_health_warehouse(path)
    result = dg.materialize(
        [integration_health],
        resources={
            "warehouse": WarehouseResource(path=str(path)),
            "reporting_database": ReportingDatabaseResource(read_environment=False),
        },
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    with warehouse.connect(read_only=True) as con:
        promises, measured_at = read_health_table(con)
        rows = con.execute(f"SELECT count(*) FROM {HEALTH_TABLE}").fetchone()[0]
    return result, checks, promises, measured_at, rows


def test_one_check_per_metric(materialized):
    _, checks, *_ = materialized
    assert set(checks) == set(METRICS)


def test_a_broken_promise_fails_its_check_and_names_its_owner(materialized):
    _, checks, *_ = materialized
    # CRM has two dead letters open, and the target is none. Its owner is Sales Operations (the
    # registry's owner of the crm system).
    dead = checks["dead_letters_open"]
    assert not dead.passed
    assert dead.severity == dg.AssetCheckSeverity.ERROR
    assert "target:crm 2 (target <= 0; owner sales-ops@example.com)" in dead.description
    assert dead.metadata["owners"].value == "sales-ops@example.com"
    # Money: order 4 is unexplained (75% < 99%), on the payments stream owned by Finance.
    money = checks["reconciliation_match_rate"]
    assert not money.passed
    assert "source:payments/charges 75.0%" in money.description
    assert "finance-ops@example.com" in money.metadata["owners"].value
    # The stock counts (50%) are the warehouse's promise: Warehouse Operations.
    assert "source:warehouse/files 50.0%" in money.description
    assert "warehouse-ops@example.com" in money.metadata["owners"].value


def test_a_kept_promise_passes(materialized):
    _, checks, *_ = materialized
    # Error rates are exactly at the 10% target (2 of 20, 1 of 10): at most 10% is kept.
    assert checks["error_rate"].passed
    assert "kept by all" in checks["error_rate"].description
    assert checks["manual_interventions"].passed  # 2 on the CRM, at most 10


def test_the_table_holds_every_promise(materialized):
    result, _, promises, measured_at, rows = materialized
    assert rows == len(promises) > 0 and measured_at is not None
    metadata = result.asset_materializations_for_node(INTEGRATION_HEALTH.to_python_identifier())[
        0
    ].metadata
    assert metadata["promises_broken"].value == sum(1 for p in promises if p.broken)
    crm_dead = next(
        p for p in promises if (p.metric, p.scope) == ("dead_letters_open", "target:crm")
    )
    assert (crm_dead.status, crm_dead.owner, crm_dead.target) == (
        "broken",
        "sales-ops@example.com",
        "<= 0",
    )


def test_the_owners_view_lists_the_broken_promise_under_its_owner(materialized):
    _, checks, *_ = materialized
    failed = [
        {
            "asset_key": INTEGRATION_HEALTH.to_user_string(),
            "check": name,
            "passed": bool(check.passed),
            "owners": check.metadata["owners"].value.split(", "),
            "owner_descriptions": check.metadata["broken_by_owner"].value,
            "description": check.description,
        }
        for name, check in checks.items()
    ]
    views = {
        view.key: view
        for view in owner_views(
            load_ownership(),
            {},
            {INTEGRATION_HEALTH.to_user_string(): ["integrations@example.com"]},
            [],
            failed,
        )
    }
    # The CRM's: two dead letters open, the oldest 5 h (> 4 h), one write of four not built (> 2%).
    assert {c["check"] for c in views["sales_ops"].broken_promises} == {
        "dead_letters_open",
        "dead_letter_age_hours",
        "quarantine_rate",
    }
    # Money and stock counts are one check, broken for two owners: each is told only their part.
    (money,) = [
        c for c in views["finance"].broken_promises if c["check"] == "reconciliation_match_rate"
    ]
    assert "source:payments/charges 75.0%" in money["description"]
    assert "warehouse/files" not in money["description"]
    (stock,) = [
        c
        for c in views["warehouse_ops"].broken_promises
        if c["check"] == "reconciliation_match_rate"
    ]
    assert "source:warehouse/files 50.0%" in stock["description"]
    assert "payments" not in stock["description"]
    # The asset's owner is not handed promises that are somebody else's.
    assert views["integrations"].broken_promises == []


def test_the_summary_names_each_scope_and_each_broken_promise(materialized):
    *_, promises, _, _ = materialized
    lines = summary_lines(promises)
    assert lines[0].startswith(
        f"Integration health: {sum(1 for p in promises if p.status != 'not judged')} promises judged"
    )
    assert any(
        line.startswith("  BROKEN target:crm dead_letters_open 2 (target <= 0)")
        and line.endswith("-> sales-ops@example.com")
        for line in lines
    )
    crm = next(line for line in lines if line.strip().startswith("target:crm"))
    assert "dead letters 2!" in crm and "[sales-ops@example.com]" in crm


def test_the_report_leads_with_the_health_summary_and_the_open_source_signals(materialized):
    from integration_assets.report import health_text

    *_, promises, measured_at, _ = materialized
    health = {
        "measured_at": measured_at.isoformat(),
        "promises": [p.as_dict() for p in promises],
        "source_signals_open": [
            {
                "kind": "permission_lost",
                "system": "storefront",
                "subject": "GET /admin/api/2025-07/orders.json",
                "detail": "answered 403 since 10:00",
                "owner": "ecommerce-ops@example.com",
                "since": measured_at.isoformat(),
            }
        ],
    }
    lines = health_text(health)
    assert lines[0].startswith("Integration health:") and "measured" in lines[0]
    assert "Source-change signals open (ops.source_signals): 1" in lines
    assert lines[-1] == (
        "  permission_lost storefront GET /admin/api/2025-07/orders.json: answered 403 since 10:00"
        " -> ecommerce-ops@example.com"
    )
    assert health_text({"promises": [], "source_signals_open": []})[0].startswith(
        "Integration health: not measured yet"
    )


def test_watch_sources_measures_health_without_the_sync_before_it(tmp_path):
    """The :35 job runs the audit trail, the source watch and the health on their own: a sync that a
    blocked gate or a 403 stopped early leaves them to it."""
    from integration_assets.defs.delivery.ops_assets import ops_audit_log
    from integration_assets.defs.watch import watch_sources
    from integration_assets.defs.watch.assets import ops_source_signals
    from integration_assets.systems.alert_sink import AlertSinkResource

    path = tmp_path / "warehouse.duckdb"
    warehouse = build_health_warehouse(path)
    defs = dg.Definitions(
        assets=[ops_audit_log, ops_source_signals, integration_health],
        jobs=[watch_sources],
        resources={
            "warehouse": WarehouseResource(path=str(path)),
            "reporting_database": ReportingDatabaseResource(read_environment=False),
            "alert_sink": AlertSinkResource(log_path=str(tmp_path / "alerts.log")),
        },
    )
    result = defs.resolve_job_def("watch_sources").execute_in_process()
    assert result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert done == {"ops/audit_log", "ops/source_signals", "reporting/integration_health"}
    assert {e.check_name for e in result.get_asset_check_evaluations()} >= set(METRICS)
    with warehouse.connect(read_only=True) as con:
        promises, _ = read_health_table(con)
    assert any(p.broken and p.metric == "dead_letters_open" for p in promises)


def test_each_scope_has_the_owner_the_registry_names():
    from integration_assets.defs.reporting.health import scope_owner

    registry = load_ownership()
    streams = {"storefront/orders": "ecommerce-ops@example.com"}
    assert scope_owner("source:storefront/orders", streams, registry) == "ecommerce-ops@example.com"
    # A stream in no contract is its system's; a target is its system's (wms is the warehouse's).
    assert scope_owner("source:payments/payout_transactions", streams, registry) == (
        "finance-ops@example.com"
    )
    assert scope_owner("target:wms", streams, registry) == "warehouse-ops@example.com"
    assert scope_owner("target:fax", streams, registry) == ""  # shown as "nobody"
