"""Schema drift on the customer references stream (CRM accounts, ERP customers), end to end: the CRM
and ERP sandboxes' records changed in flight (their rendering patched from a chosen poll on), the
customers domain materialized in process over HTTP against a temporary DuckDB. An added field is
recorded and the batch proceeds; a removed or renamed required field blocks that batch, naming the
field, the contract and its version; a new contract version in the override dir unblocks it, once."""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import pytest

from integration_assets.contracts import load_contract
from integration_assets.contracts.location import CONTRACTS_DIR_ENV
from integration_assets.defs.alerts.sensors import alert_on_schema_drift
from integration_assets.defs.customers.names import (
    CHECK_REQUIRED_FIELDS,
    CRM_STREAM,
    CUSTOMERS,
    ERP_STREAM,
    GATING_CHECKS,
    STAGING_REFERENCES,
)
from integration_assets.sandbox.crm_app import CrmApp
from integration_assets.sandbox.erp_store import StoredRecord as ErpStoredRecord
from integration_assets.streams.contract_names import with_contract_names
from integration_assets.systems.alert_sink import AlertSinkResource, read_alert_log
from integration_assets_tests.contracts.test_drift_payments_products import upgrade_contract
from integration_assets_tests.pipeline.conftest import (
    check_description,
    check_outcomes,
    materialized,
)
from integration_assets_tests.pipeline.test_customers_stream import (
    BOB,
    CRM_YAML,
    CustomersWorld,
    customers_world,
    metadata_of,
)
from integration_assets_tests.stream_harness import PayloadChange


@contextmanager
def drifting_world(
    tmp_path, monkeypatch, crm_change: dict, erp_change: dict | None = None
) -> Iterator[tuple[CustomersWorld, PayloadChange, PayloadChange]]:
    """The customers domain with `crm_change` applied to every account row the CRM's query returns
    and `erp_change` to every customer the ERP lists, once switched on; the first run sees the
    records as they are and passes every gate."""
    crm, erp = PayloadChange(crm_change), PayloadChange(erp_change or {})
    account_row, as_json = CrmApp._account_row, ErpStoredRecord.as_json

    def changed_account_row(self, record):
        return crm.apply(account_row(self, record))

    def changed_as_json(self, with_updated_at=False):
        body = as_json(self, with_updated_at)
        return erp.apply(body) if with_updated_at else body  # only what the list endpoint serves

    monkeypatch.setattr(CrmApp, "_account_row", changed_account_row)
    monkeypatch.setattr(ErpStoredRecord, "as_json", changed_as_json)
    with customers_world(tmp_path, CRM_YAML) as world:
        first = world.run()
        assert first.success
        assert all(check_outcomes(first)[name] for name in GATING_CHECKS)
        yield world, crm, erp


def next_poll(world: CustomersWorld) -> dg.ExecuteInProcessResult:
    """An hour later: the lookback re-reads each system's newest record into a new batch."""
    world.clock.advance(timedelta(hours=1))
    return world.run()


def balances_hold(world: CustomersWorld) -> bool:
    return world.sql("SELECT bool_and(holds) FROM ops.count_balances")[0][0]


def test_ordinary_crm_and_erp_records_raise_no_drift_and_pass_the_drift_check(
    tmp_path, monkeypatch
):
    with drifting_world(tmp_path, monkeypatch, {}) as (world, _, _):
        result = next_poll(world)
        assert all(check_outcomes(result)[name] for name in GATING_CHECKS)
        assert world.sql("SELECT count(*) FROM ops.schema_drift") == [(0,)]
        assert world.sql(
            "SELECT stream, count(*), min(contract_version) FROM staging.batches "
            "WHERE stream LIKE 'crm/%' OR stream LIKE 'erp/%' GROUP BY 1 ORDER BY 1"
        ) == [(CRM_STREAM, 2, 1), (ERP_STREAM, 2, 1)]
        passed = world.sql(
            "SELECT count(*) FROM ops.batch_gates WHERE check_name = ? AND passed "
            "AND stream IN (?, ?)",
            [CHECK_REQUIRED_FIELDS, CRM_STREAM, ERP_STREAM],
        )
        assert passed == [(4,)]
        reasons = world.sql(
            "SELECT DISTINCT stream, reason FROM ops.batch_gates WHERE check_name = ? "
            "AND stream IN (?, ?) ORDER BY 1",
            [CHECK_REQUIRED_FIELDS, CRM_STREAM, ERP_STREAM],
        )
        assert reasons == [
            (CRM_STREAM, "no breaking drift against contract crm_accounts v1"),
            (ERP_STREAM, "no breaking drift against contract erp_customers v1"),
        ]
        assert metadata_of(result, STAGING_REFERENCES)["schema_drift"] == {}


def test_an_added_crm_field_is_recorded_the_batch_proceeds_and_the_owner_is_told_once(
    tmp_path, monkeypatch
):
    with drifting_world(tmp_path, monkeypatch, {"set": {"Rating": "Hot"}}) as (world, crm, _):
        crm.active = True
        result = next_poll(world)
        assert all(check_outcomes(result)[name] for name in GATING_CHECKS)
        assert CUSTOMERS.to_user_string() in materialized(result)
        assert world.sql(
            "SELECT stream, kind, field, breaking, contract, contract_version, owner "
            "FROM ops.schema_drift"
        ) == [(CRM_STREAM, "added", "Rating", False, "crm_accounts", 1, "sales-ops@example.com")]
        assert metadata_of(result, STAGING_REFERENCES)["schema_drift"] == {
            f"{CRM_STREAM}: added": 1
        }
        sink = AlertSinkResource(log_path=str(tmp_path / "alerts.log"))
        context = dg.build_sensor_context(
            resources={"alert_sink": sink, "warehouse": world.resources["warehouse"]}
        )
        assert "1 new schema drift notice" in alert_on_schema_drift(context).skip_message
        next_poll(world)  # the same new field in a later batch is not news
        assert "1 new schema drift notice" not in (
            alert_on_schema_drift(context).skip_message or ""
        )
        (alert,) = [
            line for line in read_alert_log(tmp_path / "alerts.log") if line["event"] == "alert"
        ]
        assert alert["owner"] == "sales-ops@example.com" and "Rating" in alert["title"]


@pytest.mark.parametrize(
    ("crm_change", "erp_change", "stream", "words"),
    [
        (
            {"remove": ["External_Id__c"]},
            {},
            CRM_STREAM,
            "required field 'External_Id__c' is missing in 1 of 1 records "
            "against contract crm_accounts v1",
        ),
        (
            {},
            {"retype": {"version": str}},
            ERP_STREAM,
            "required field 'version' is string in 1 of 1 records",
        ),
    ],
)
def test_breaking_drift_blocks_that_batch_naming_field_contract_and_version(
    tmp_path, monkeypatch, crm_change, erp_change, stream, words
):
    with drifting_world(tmp_path, monkeypatch, crm_change, erp_change) as (world, crm, erp):
        golden_before = world.golden()
        crm.active = erp.active = True
        result = next_poll(world)
        assert check_outcomes(result)[CHECK_REQUIRED_FIELDS] is False
        description = check_description(result, CHECK_REQUIRED_FIELDS)
        assert words in description and f"{stream}:" in description
        assert CUSTOMERS.to_user_string() not in materialized(result)
        assert world.sql("SELECT DISTINCT stream FROM ops.batch_gates WHERE NOT passed") == [
            (stream,)
        ]
        assert world.sql("SELECT stream, field, breaking FROM ops.schema_drift") == [
            (stream, words.split("'")[1], True)
        ]
        # Nothing of the blocked batch reaches core, in this run or a later one.
        later = world.run(selection=[CUSTOMERS])
        assert CUSTOMERS.to_user_string() in materialized(later)
        assert world.golden() == golden_before
        assert balances_hold(world)


def test_a_new_crm_contract_version_unblocks_a_renamed_field_once(tmp_path, monkeypatch):
    # The CRM renames External_Id__c, and Bob's phone changed meanwhile (a new record version).
    change = {"rename": {"External_Id__c": "External_Key__c"}, "set": {"Phone": "+1 502 555 0100"}}
    with drifting_world(tmp_path, monkeypatch, change) as (world, crm, _):
        crm.active = True
        blocked = next_poll(world)
        assert check_outcomes(blocked)[CHECK_REQUIRED_FIELDS] is False
        assert (
            "required field 'External_Id__c' is missing in 1 of 1 records "
            "(renamed to 'External_Key__c'?) against contract crm_accounts v1"
        ) in check_description(blocked, CHECK_REQUIRED_FIELDS)
        ((blocked_batch,),) = world.sql(
            "SELECT DISTINCT batch_id FROM ops.batch_gates WHERE NOT passed AND stream = ?",
            [CRM_STREAM],
        )
        assert world.golden()[BOB]["phone"] == "+1 502 555 0199"

        upgrade_contract(
            tmp_path / "contracts",
            "crm_accounts",
            "External_Id__c",
            "External_Id__c is sent as External_Key__c",
            source="External_Key__c",
        )
        monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
        upgraded = world.run()

        assert all(check_outcomes(upgraded)[name] for name in GATING_CHECKS)
        assert CUSTOMERS.to_user_string() in materialized(upgraded)
        assert metadata_of(upgraded, STAGING_REFERENCES)["batches_restaged"] == 1
        # Staged again under v2: one batch row, one balance (which holds), nothing quarantined.
        assert world.sql(
            "SELECT records_read, staged, quarantined, duplicates, contract_version "
            "FROM staging.batches WHERE stream = ? AND batch_id = ?",
            [CRM_STREAM, blocked_batch],
        ) == [(1, 1, 0, 0, 2)]
        assert world.sql(
            "SELECT count(*) FROM ops.quarantine WHERE batch_id = ?", [blocked_batch]
        ) == [(0,)]
        assert world.sql(
            "SELECT count(*), bool_and(holds) FROM ops.count_balances WHERE scope = ?",
            [f"{CRM_STREAM}:{blocked_batch}"],
        ) == [(1, True)]
        assert balances_hold(world)
        # Core reads the renamed field under its contract name: Bob's new phone reached the record.
        assert world.golden()[BOB]["phone"] == "+1 502 555 0100"
        # The v1 event stays as history; v2 saw no drift. A later run re-stages nothing.
        assert world.sql("SELECT DISTINCT kind, contract_version FROM ops.schema_drift") == [
            ("renamed", 1)
        ]
        assert metadata_of(world.run(), STAGING_REFERENCES)["batches_restaged"] == 0


def test_a_renamed_field_is_read_under_its_contract_name_and_nothing_else_moves():
    v1 = load_contract("crm_accounts")
    v2 = dataclasses.replace(
        v1,
        fields=tuple(
            dataclasses.replace(rule, source="External_Key__c")
            if rule.name == "External_Id__c"
            else rule
            for rule in v1.fields
        ),
    )
    sent = {"Id": "001", "External_Key__c": "42", "Name": "Ada"}
    assert with_contract_names(sent, v2) == {"Id": "001", "External_Id__c": "42", "Name": "Ada"}
    assert sent == {"Id": "001", "External_Key__c": "42", "Name": "Ada"}  # raw is not changed
    # An older record, still under the contract name, and a v1 contract, are left as they are.
    older = {"Id": "001", "External_Id__c": "42"}
    assert with_contract_names(older, v2) is older
    assert with_contract_names(sent, v1) is sent
    assert with_contract_names(["not", "an", "object"], v2) == ["not", "an", "object"]
