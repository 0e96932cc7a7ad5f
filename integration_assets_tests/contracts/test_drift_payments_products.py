"""Schema drift on the payments and products streams, end to end: the sandbox's payloads changed in
flight (its payload rendering patched from a given poll on), the streams materialized in process
against the sandbox over HTTP and a temporary DuckDB; breaking drift blocks the batch, naming the
field, the contract and its version, and a new contract version in the override dir unblocks it."""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.contracts.location import CONTRACTS_DIR_ENV
from integration_assets.defs.alerts.sensors import alert_on_schema_drift
from integration_assets.defs.payments.names import CHECK_REQUIRED_FIELDS as PAYMENTS_DRIFT_CHECK
from integration_assets.defs.payments.names import GATING_CHECKS as PAYMENTS_GATING
from integration_assets.defs.products import products_assets, products_checks
from integration_assets.defs.products.names import CHECK_REQUIRED_FIELDS as PRODUCTS_DRIFT_CHECK
from integration_assets.defs.products.names import GATING_CHECKS as PRODUCTS_GATING
from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.sandbox.payments_app import PaymentsApp
from integration_assets.sandbox.storefront_products import ProductCatalog
from integration_assets.systems.alert_sink import AlertSinkResource, read_alert_log
from integration_assets_tests.pipeline.conftest import (
    check_description,
    check_outcomes,
    materialized,
)
from integration_assets_tests.stream_harness import PAYMENTS_ASSETS, PayloadChange, Stream

PRODUCTS_ASSETS = [*products_assets, *products_checks]


def staging_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return {
        key: entry.value
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
        for key, entry in event.materialization.metadata.items()
    }


def upgrade_contract(directory: Path, name: str, field: str, change: str, **rule) -> None:
    """Version 2 of a packaged contract in the override dir: `field`'s rule updated with `rule`."""
    raw = yaml.safe_load((CONTRACTS_DIR / f"{name}.yaml").read_text())
    raw["version"] = 2
    raw["fields"][field] = {**raw["fields"][field], **rule}
    raw["history"].append(
        {"version": 2, "date": "2026-12-01", "change": change, "by": raw["owner"]}
    )
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def balances_hold(stream: Stream) -> bool:
    return stream.scalar("SELECT bool_and(holds) FROM ops.count_balances")


# ---- payments ---------------------------------------------------------------------------------


@contextmanager
def payments_stream(tmp_path, monkeypatch, change: dict) -> Iterator[tuple[Stream, PayloadChange]]:
    """The payments scenario with `change` applied to every charge the sandbox lists, or sends in
    an event (later polls read charges from the event log), once switched on; the first poll (4h
    in) sees the charges as they are and passes."""
    scenario = load_scenario(SCENARIOS_DIR / "payments.yaml")
    charges = PayloadChange(change)
    listed = PaymentsApp._list

    def changed_list(self, request, resource, snapshot):
        page = listed(self, request, resource, snapshot)
        if resource == "charges":
            page = {**page, "data": [charges.apply(body) for body in page["data"]]}
        if resource == "events":
            page = {
                **page,
                "data": [
                    {**event, "data": {"object": charges.apply(event["data"]["object"])}}
                    for event in page["data"]
                ],
            }
        return page

    monkeypatch.setattr(PaymentsApp, "_list", changed_list)
    with start_sandbox_systems(scenario) as systems:
        stream = Stream(tmp_path, systems, scenario, PAYMENTS_ASSETS)
        stream.advance(hours=4)
        first = stream.run()
        assert first.success
        assert all(check_outcomes(first)[name] for name in PAYMENTS_GATING)
        yield stream, charges


def test_an_ordinary_payments_run_records_no_drift_and_every_batch_keeps_its_contract_version(
    tmp_path, monkeypatch
):
    with payments_stream(tmp_path, monkeypatch, {}) as (stream, _):
        stream.advance(hours=20)
        assert stream.run().success
        assert stream.scalar("SELECT count(*) FROM ops.schema_drift") == 0
        versions = dict(
            stream.sql(
                "SELECT stream, max(contract_version) FROM staging.batches "
                "WHERE stream LIKE 'payments/%' GROUP BY stream"
            )
        )
        assert set(versions) >= {"payments/charges", "payments/balance_transactions"}
        assert set(versions.values()) == {1}
        assert stream.scalar(
            "SELECT count(*) FROM ops.batch_gates WHERE check_name = ? AND passed",
            [PAYMENTS_DRIFT_CHECK],
        ) == stream.scalar("SELECT count(*) FROM staging.batches")


def test_an_added_payments_field_is_recorded_and_the_batch_proceeds(tmp_path, monkeypatch):
    with payments_stream(tmp_path, monkeypatch, {"set": {"risk_score": 12}}) as (stream, charges):
        charges.active = True
        stream.advance(hours=2)
        result = stream.run()
        assert all(check_outcomes(result)[name] for name in PAYMENTS_GATING)
        assert "core/financial_ledger" in materialized(result)
        assert stream.sql(
            "SELECT DISTINCT stream, kind, field, breaking, contract, owner FROM ops.schema_drift"
        ) == [
            (
                "payments/charges",
                "added",
                "risk_score",
                False,
                "payments_charges",
                "finance-ops@example.com",
            )
        ]
        # The drift sensor tells the contract's owner once.
        sink = AlertSinkResource(log_path=str(tmp_path / "alerts.log"))
        context = dg.build_sensor_context(
            resources={"alert_sink": sink, "warehouse": stream.resources["warehouse"]}
        )
        assert "1 new schema drift notice" in alert_on_schema_drift(context).skip_message
        (alert,) = [
            line for line in read_alert_log(tmp_path / "alerts.log") if line["event"] == "alert"
        ]
        assert alert["owner"] == "finance-ops@example.com" and "risk_score" in alert["title"]


@pytest.mark.parametrize(
    ("change", "kind", "words"),
    [
        ({"retype": {"amount": str}}, "retyped", "required field 'amount' is string in"),
        ({"remove": ["amount_refunded"]}, "removed", "required field 'amount_refunded' is missing"),
    ],
)
def test_breaking_payments_drift_blocks_the_charges_batch_naming_field_contract_and_version(
    tmp_path, monkeypatch, change, kind, words
):
    with payments_stream(tmp_path, monkeypatch, change) as (stream, charges):
        ledger_before = stream.sql("SELECT * FROM core.financial_ledger ORDER BY entry_id")
        charges.active = True
        stream.advance(hours=2)
        result = stream.run()
        assert check_outcomes(result)[PAYMENTS_DRIFT_CHECK] is False
        description = check_description(result, PAYMENTS_DRIFT_CHECK)
        assert words in description and "against contract payments_charges v1" in description
        assert "payments/charges:" in description  # the blocked batch is named with its stream
        assert "core/financial_ledger" not in materialized(result)
        # Only the charges batch is blocked; the other object types passed.
        blocked = stream.sql(
            "SELECT DISTINCT stream FROM ops.batch_gates WHERE NOT passed ORDER BY stream"
        )
        assert blocked == [("payments/charges",)]
        assert stream.sql("SELECT DISTINCT kind, field, breaking FROM ops.schema_drift") == [
            (kind, words.split("'")[1], True)
        ]
        # A later run does not promote it either: core still has what it had.
        stream.run()
        assert stream.sql("SELECT * FROM core.financial_ledger ORDER BY entry_id") == ledger_before
        assert balances_hold(stream)


def test_a_new_payments_contract_version_unblocks_the_charges_batch(tmp_path, monkeypatch):
    rename = {"rename": {"amount_refunded": "amount_refunded_minor"}}
    with payments_stream(tmp_path, monkeypatch, rename) as (stream, charges):
        charges.active = True
        stream.advance(hours=2)
        blocked = stream.run()
        assert check_outcomes(blocked)[PAYMENTS_DRIFT_CHECK] is False
        assert "(renamed to 'amount_refunded_minor'?)" in check_description(
            blocked, PAYMENTS_DRIFT_CHECK
        )
        blocked_batch, records_read = stream.sql(
            "SELECT b.batch_id, b.records_read FROM staging.batches b JOIN ops.batch_gates g "
            "USING (stream, batch_id) WHERE NOT g.passed"
        )[0]
        assert stream.scalar(
            "SELECT quarantined FROM staging.batches WHERE batch_id = ?", [blocked_batch]
        ) == (records_read)  # every charge lacks amount_refunded under v1

        upgrade_contract(
            tmp_path / "contracts",
            "payments_charges",
            "amount_refunded",
            "amount_refunded is sent as amount_refunded_minor",
            source="amount_refunded_minor",
        )
        monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
        upgraded = stream.run()

        assert all(check_outcomes(upgraded)[name] for name in PAYMENTS_GATING)
        assert "core/financial_ledger" in materialized(upgraded)
        assert staging_metadata(upgraded, "staging/payments/objects")["batches_restaged"] == 1
        # Staged again under v2: every charge staged (none quarantined), one balance, which holds.
        assert stream.sql(
            "SELECT records_read, staged, quarantined, contract_version FROM staging.batches "
            "WHERE batch_id = ? AND stream = 'payments/charges'",
            [blocked_batch],
        ) == [(records_read, records_read, 0, 2)]
        assert (
            stream.scalar("SELECT count(*) FROM ops.quarantine WHERE batch_id = ?", [blocked_batch])
            == 0
        )
        assert stream.sql(
            "SELECT count(*), bool_and(holds) FROM ops.count_balances WHERE scope = ?",
            [f"charges:{blocked_batch}"],
        ) == [(1, True)]
        assert stream.scalar(
            "SELECT count(*) FROM staging.payments_objects WHERE batch_id = ? AND contract_version = 2",
            [blocked_batch],
        ) == (records_read)
        assert balances_hold(stream)
        # The v1 event stays as history; v2 saw no drift.
        assert stream.sql("SELECT DISTINCT kind, contract_version FROM ops.schema_drift") == [
            ("renamed", 1)
        ]
        assert staging_metadata(stream.run(), "staging/payments/objects")["batches_restaged"] == 0


# ---- products ---------------------------------------------------------------------------------


@contextmanager
def products_stream(tmp_path, monkeypatch, change: dict) -> Iterator[tuple[Stream, PayloadChange]]:
    """The default scenario's catalog (without request faults) with `change` applied to every
    product the sandbox serves once switched on; the first poll (6h in) passes."""
    scenario = load_scenario(SCENARIOS_DIR / "default.yaml")
    scenario = dataclasses.replace(scenario, faults=())
    products = PayloadChange(change)
    products_at = ProductCatalog.products_at

    def changed_products_at(self, moment):
        return [
            dataclasses.replace(served, body=products.apply(served.body))
            for served in products_at(self, moment)
        ]

    monkeypatch.setattr(ProductCatalog, "products_at", changed_products_at)
    with start_sandbox_systems(scenario) as systems:
        stream = Stream(tmp_path, systems, scenario, PRODUCTS_ASSETS)
        stream.advance(hours=6)
        first = stream.run()
        assert first.success
        assert all(check_outcomes(first)[name] for name in PRODUCTS_GATING)
        yield stream, products


def test_an_ordinary_products_run_records_no_drift(tmp_path, monkeypatch):
    with products_stream(tmp_path, monkeypatch, {}) as (stream, _):
        stream.advance(hours=18)
        result = stream.run()
        assert all(check_outcomes(result)[name] for name in PRODUCTS_GATING)
        assert stream.scalar("SELECT count(*) FROM ops.schema_drift") == 0
        assert stream.sql("SELECT DISTINCT contract_version FROM staging.batches") == [(1,)]
        assert stream.sql("SELECT DISTINCT contract_version FROM staging.storefront_products") == [
            (1,)
        ]


def test_a_retyped_product_id_blocks_the_batch_naming_field_contract_and_version(
    tmp_path, monkeypatch
):
    with products_stream(tmp_path, monkeypatch, {"retype": {"id": str}}) as (stream, products):
        history_before = stream.sql("SELECT * FROM core.product_history ORDER BY sku, valid_from")
        products.active = True
        stream.advance(hours=6)
        result = stream.run()
        assert check_outcomes(result)[PRODUCTS_DRIFT_CHECK] is False
        description = check_description(result, PRODUCTS_DRIFT_CHECK)
        assert "required field 'id' is string in" in description
        assert "against contract storefront_products v1" in description
        assert "core/products" not in materialized(result)
        assert stream.sql("SELECT kind, field, breaking FROM ops.schema_drift") == [
            ("retyped", "id", True)
        ]
        stream.run()
        assert (
            stream.sql("SELECT * FROM core.product_history ORDER BY sku, valid_from")
            == history_before
        )
        assert balances_hold(stream)


def test_a_new_products_contract_version_unblocks_a_renamed_field(tmp_path, monkeypatch):
    rename = {"rename": {"updated_at": "updated_at_utc"}}
    with products_stream(tmp_path, monkeypatch, rename) as (stream, products):
        products.active = True
        stream.advance(hours=6)
        blocked = stream.run()
        assert check_outcomes(blocked)[PRODUCTS_DRIFT_CHECK] is False
        description = check_description(blocked, PRODUCTS_DRIFT_CHECK)
        assert "required field 'updated_at' is missing in" in description
        assert "(renamed to 'updated_at_utc'?) against contract storefront_products v1" in (
            description
        )
        (blocked_batch,) = stream.sql(
            "SELECT DISTINCT batch_id FROM ops.batch_gates WHERE NOT passed"
        )[0]
        read = stream.scalar(
            "SELECT records_read FROM staging.batches WHERE batch_id = ?", [blocked_batch]
        )

        upgrade_contract(
            tmp_path / "contracts",
            "storefront_products",
            "updated_at",
            "updated_at is sent as updated_at_utc",
            source="updated_at_utc",
        )
        monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
        upgraded = stream.run()

        assert all(check_outcomes(upgraded)[name] for name in PRODUCTS_GATING)
        assert "core/products" in materialized(upgraded)
        assert staging_metadata(upgraded, "staging/storefront/products")["batches_restaged"] == 1
        staged, quarantined, duplicates, version = stream.sql(
            "SELECT staged, quarantined, duplicates, contract_version FROM staging.batches "
            "WHERE batch_id = ?",
            [blocked_batch],
        )[0]
        assert (quarantined, version) == (0, 2) and staged + duplicates == read
        assert (
            stream.scalar(
                "SELECT count(*) FROM ops.count_balances WHERE scope = ?", [blocked_batch]
            )
            == 1
        )
        assert balances_hold(stream)
        assert stream.sql("SELECT DISTINCT kind, contract_version FROM ops.schema_drift") == [
            ("renamed", 1)
        ]
        promoted = stream.scalar(
            "SELECT count(*) FROM ops.batch_gates WHERE batch_id = ? AND passed", [blocked_batch]
        )
        assert promoted == len(PRODUCTS_GATING)
