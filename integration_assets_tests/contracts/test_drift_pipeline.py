"""Schema drift end to end: the tiny scenario's orders, a schema change injected at +6h, the order
stream materialized in process against the sandbox and a temporary DuckDB."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
import yaml

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.contracts.location import CONTRACTS_DIR_ENV
from integration_assets.defs.alerts.sensors import alert_on_schema_drift
from integration_assets.defs.orders.names import CHECK_REQUIRED_FIELDS, GATING_CHECKS
from integration_assets.report import build_report, render_text
from integration_assets.sandbox import start_storefront
from integration_assets.sandbox.scenario import parse_scenario
from integration_assets.storage.resources import WarehouseResource
from integration_assets.systems.alert_sink import AlertSinkResource, read_alert_log
from integration_assets_tests.pipeline.conftest import (
    SCENARIOS,
    Pipeline,
    check_description,
    check_outcomes,
    materialized,
)

REFUNDED_ORDER_AFTER_THE_CHANGE = (
    "refunded"  # the tiny story updated after +6h (fulfilled, refunded)
)


@contextmanager
def drifting(tmp_path, change: dict) -> Iterator[Pipeline]:
    """The tiny scenario with `change` (a schema_change fault without `at`) from +6h on; the first
    poll (at +5h30m) sees every order before the change and promotes it."""
    raw = yaml.safe_load((SCENARIOS / "tiny.yaml").read_text())
    raw["faults"] = [{"kind": "schema_change", "at": "+6h", **change}]
    scenario = parse_scenario(raw, SCENARIOS / "tiny.yaml")
    with start_storefront(scenario) as sandbox:
        pipeline = Pipeline(tmp_path, sandbox, scenario)
        pipeline.advance(hours=5, minutes=30)
        first = pipeline.run()
        assert all(check_outcomes(first)[name] for name in GATING_CHECKS)
        yield pipeline


def refunded_order_state(pipeline: Pipeline) -> tuple:
    return pipeline.sql(
        "SELECT financial_status, fulfillment_status FROM core.orders_current "
        "WHERE order_id = (SELECT order_id FROM staging.storefront_orders "
        "                  WHERE snapshot->>'$.totals.shipping_minor' = '1250' LIMIT 1)"
    )[0]


def balances_hold(pipeline: Pipeline) -> bool:
    return pipeline.scalar("SELECT bool_and(holds) FROM ops.count_balances")


def staged_batch_books(pipeline: Pipeline) -> list[tuple]:
    return pipeline.sql(
        "SELECT batch_id, records_read, staged, quarantined, duplicates, contract_version "
        "FROM staging.batches ORDER BY batch_id"
    )


def test_an_added_field_is_recorded_the_batch_proceeds_and_the_owner_is_told_once(tmp_path):
    with drifting(tmp_path, {"add": {"loyalty_tier": "gold"}}) as pipeline:
        before = refunded_order_state(pipeline)
        pipeline.advance(hours=6)
        result = pipeline.run()
        assert all(check_outcomes(result)[name] for name in GATING_CHECKS)
        assert "core/order_events" in materialized(result)
        assert refunded_order_state(pipeline) != before  # the change reached core
        events = pipeline.sql(
            "SELECT kind, field, breaking, contract, contract_version, owner FROM ops.schema_drift"
        )
        assert events == [
            ("added", "loyalty_tier", False, "storefront_orders", 1, "ecommerce-ops@example.com")
        ]

        sink = AlertSinkResource(log_path=str(tmp_path / "alerts.log"))
        warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))

        def tick():
            context = dg.build_sensor_context(
                resources={"alert_sink": sink, "warehouse": warehouse}
            )
            return alert_on_schema_drift(context)

        assert "1 new schema drift notice" in tick().skip_message
        # A later batch with the same new field is recorded, but it is not news.
        pipeline.advance(hours=4)
        later = pipeline.run()
        assert "core/order_events" in materialized(later)
        assert pipeline.scalar("SELECT count(DISTINCT batch_id) FROM ops.schema_drift") == 2
        assert "0 new schema drift notice" in tick().skip_message
        alerts = [
            line for line in read_alert_log(tmp_path / "alerts.log") if line["event"] == "alert"
        ]
        assert len(alerts) == 1
        assert alerts[0]["owner"] == "ecommerce-ops@example.com"
        assert alerts[0]["severity"] == "warning"
        assert "loyalty_tier" in alerts[0]["title"]
        assert (
            pipeline.scalar("SELECT count(*) FROM ops.schema_drift WHERE notified_at IS NULL") == 0
        )


@pytest.mark.parametrize(
    ("change", "kind", "field", "words"),
    [
        ({"remove": ["total_tax"]}, "removed", "total_tax", "is missing in 1 of"),
        (
            {"rename": {"total_price": "total_price_amount"}},
            "renamed",
            "total_price",
            "(renamed to 'total_price_amount'?)",
        ),
        ({"add": {"financial_status": 3}}, "retyped", "financial_status", "is integer in 1 of"),
    ],
)
def test_breaking_drift_blocks_the_batch_with_a_message_naming_field_contract_and_version(
    tmp_path, change, kind, field, words
):
    with drifting(tmp_path, change) as pipeline:
        before = refunded_order_state(pipeline)
        pipeline.advance(hours=6)
        result = pipeline.run()
        assert check_outcomes(result)[CHECK_REQUIRED_FIELDS] is False
        description = check_description(result, CHECK_REQUIRED_FIELDS)
        assert f"required field '{field}'" in description and words in description
        assert "against contract storefront_orders v1" in description
        assert "core/order_events" not in materialized(result)
        assert refunded_order_state(pipeline) == before  # core unchanged for that order
        assert pipeline.sql("SELECT kind, field, breaking FROM ops.schema_drift") == [
            (kind, field, True)
        ]
        # A later run does not promote the blocked batch either.
        pipeline.run()
        assert refunded_order_state(pipeline) == before
        assert balances_hold(pipeline)
        report = render_text(build_report(pipeline.raw_log, pipeline.warehouse, False))
        # Two blocked batches by now: the later poll read the changed order again (lookback).
        assert f"events by kind: {kind} 2 (1 field(s)); 2 breaking still blocking a batch" in report
        assert f"required field '{field}'" in report


def contract_v2(directory, total_price_source: str) -> None:
    raw = yaml.safe_load((CONTRACTS_DIR / "storefront_orders.yaml").read_text())
    raw["version"] = 2
    raw["fields"]["total_price"]["source"] = total_price_source
    raw["history"].append(
        {
            "version": 2,
            "date": "2026-12-01",
            "change": f"total_price is sent as {total_price_source}",
            "by": "ecommerce-ops@example.com",
        }
    )
    directory.mkdir()
    (directory / "storefront_orders.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_a_new_contract_version_unblocks_the_batch_which_is_staged_again_and_promoted(
    tmp_path, monkeypatch
):
    with drifting(tmp_path, {"rename": {"total_price": "total_price_amount"}}) as pipeline:
        before = refunded_order_state(pipeline)
        pipeline.advance(hours=6)
        blocked = pipeline.run()
        assert check_outcomes(blocked)[CHECK_REQUIRED_FIELDS] is False
        blocked_batch = pipeline.scalar(
            "SELECT batch_id FROM ops.batch_gates WHERE NOT passed ORDER BY batch_id LIMIT 1"
        )
        books_before = {row[0]: row for row in staged_batch_books(pipeline)}
        assert books_before[blocked_batch][3] == 1  # quarantined: total_price missing
        staged_rows_before = pipeline.scalar("SELECT count(*) FROM staging.storefront_orders")

        contract_v2(tmp_path / "contracts", "total_price_amount")
        monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
        upgraded = pipeline.run()

        assert all(check_outcomes(upgraded)[name] for name in GATING_CHECKS)
        assert "core/order_events" in materialized(upgraded)
        promoted = {row[0] for row in pipeline.sql("SELECT batch_id FROM core.promoted_batches")}
        assert blocked_batch in promoted
        after = refunded_order_state(pipeline)
        assert after != before and after[0] == "partially_refunded"
        books = {row[0]: row for row in staged_batch_books(pipeline)}
        # Same batch, same records read, now staged (not quarantined) under v2; the others untouched.
        _, read, staged, quarantined, duplicates, _ = books_before[blocked_batch]
        assert books[blocked_batch][1:] == (read, staged + quarantined, 0, duplicates, 2)
        # The other batches are untouched (the upgraded run also polled once more: a new batch).
        assert {k: books[k] for k in books_before if k != blocked_batch} == {
            k: v for k, v in books_before.items() if k != blocked_batch
        }
        assert pipeline.scalar("SELECT count(*) FROM ops.quarantine") == 0
        assert pipeline.scalar("SELECT count(*) FROM staging.storefront_orders") == (
            staged_rows_before + 1
        )
        # Nothing doubled: one balance per batch, all hold, versions promoted once.
        assert balances_hold(pipeline)
        assert (
            pipeline.sql(
                "SELECT scope, count(*) FROM ops.count_balances WHERE asset_key = 'staging/storefront/orders' "
                "GROUP BY scope HAVING count(*) > 1"
            )
            == []
        )
        versions, applied, duplicates, stale = pipeline.sql(
            "SELECT sum(versions), sum(applied), sum(duplicates), sum(stale) FROM core.promoted_batches"
        )[0]
        assert versions == applied + duplicates + stale
        # The v1 event stays as history; v2 saw no drift; a later run re-stages nothing.
        assert pipeline.sql("SELECT kind, contract_version FROM ops.schema_drift") == [
            ("renamed", 1)
        ]
        report = build_report(pipeline.raw_log, pipeline.warehouse, False)
        assert report["schema_drift"]["open_breaking"] == []
        again = pipeline.run()
        assert (
            dict(
                (key, entry.value)
                for event in again.get_asset_materialization_events()
                if event.asset_key.to_user_string() == "staging/storefront/orders"
                for key, entry in event.materialization.metadata.items()
            )["batches_restaged"]
            == 0
        )
