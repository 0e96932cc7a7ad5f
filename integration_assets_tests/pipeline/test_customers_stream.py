"""Layer 3: the customers domain materialized in process against the CRM and ERP sandboxes over HTTP,
a temporary raw log and a temporary DuckDB whose current orders are seeded from a real order payload."""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import load_contract
from integration_assets.contracts.ownership import load_ownership
from integration_assets.defs.customers import customers_assets, customers_checks
from integration_assets.defs.customers.checks import judge_keys, judge_quarantine_share
from integration_assets.defs.customers.core import conflicts_against_registry
from integration_assets.defs.customers.names import (
    CHECK_CONFLICTS_RESOLVED,
    CHECK_EVERY_CUSTOMER_HAS_EMAIL,
    CHECK_QUARANTINE_SHARE,
    CRM_STREAM,
    CUSTOMERS,
    ERP_STREAM,
    GATING_CHECKS,
    STAGING_REFERENCES,
)
from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.crm_app import RunningCrm, parse_crm, start_crm
from integration_assets.sandbox.erp_app import RunningErp, parse_erp, start_erp
from integration_assets.sandbox.scenario import _Reader
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.customers import GOLDEN_COLUMNS
from integration_assets.systems.crm import CrmClient
from integration_assets.systems.erp import ErpClient
from integration_assets_tests.conftest import load_fixture_order
from integration_assets_tests.pipeline.conftest import (
    check_description,
    check_outcomes,
    materialized,
)
from integration_assets_tests.seeding import land_and_promote_orders

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BOB = "207119551"  # the customer of the real Shopify order fixture
LENA = "005Sb0000000021AAA"
CRM_SECRET = "crm-customers-secret-5a1b9c"
ERP_SECRET = "erp-customers-secret-7d3e2f"
BOB_CRM = {
    "external_id": BOB,
    "FirstName": "Bob",
    "LastName": "Norman",
    "BillingStreet": "Chestnut Street 92",
    "BillingCity": "Louisville",
    "BillingState": "KY",
    "BillingPostalCode": "40202",
    "BillingCountry": "US",
    "Phone": "+1 502 555 0199",
    "Customer_Segment__c": "Wholesale",
    "owner": LENA,
    "last_modified": "2026-11-19T08:00:00Z",
}
CRM_YAML = {
    "client_id": "crm-customers-test",
    "client_secret": CRM_SECRET,
    "users": [
        {
            "id": "005Sb0000000001AAA",
            "name": "Integration User",
            "email": "integration@example.com",
        },
        {"id": LENA, "name": "Lena Fischer", "email": "Lena.Fischer@shop.example"},
    ],
    # The CRM admin added a segment our contract (and crm_mapping.yaml) does not know yet.
    "picklists": {
        "Customer_Segment__c": ["Retail", "Wholesale", "VIP", "Marketplace", "Enterprise"]
    },
    "accounts": [BOB_CRM],
}
ERP_YAML = {
    "client_id": "erp-customers-test",
    "client_secret": ERP_SECRET,
    "customers": [
        {
            "external_id": BOB,
            "name": "Bob Norman",
            "email": "bob.norman@hostmail.com",
            "credit_limit": "2500.00",
            "payment_terms": "NET30",
            "billing_address": {
                "line1": "PO Box 7",
                "city": "Louisville",
                "postal_code": "40201",
                "country": "US",
            },
        }
    ],
}


def enterprise_account(external_id: str, name: str) -> dict:
    return {
        "external_id": external_id,
        "Name": name,
        "BillingCity": "Leeds",
        "BillingCountry": "GB",
        "Customer_Segment__c": "Enterprise",
        "last_modified": "2026-11-19T09:00:00Z",
    }


def crm_yaml(*extra_accounts: dict) -> dict:
    return {**CRM_YAML, "accounts": [BOB_CRM, *extra_accounts]}


@dataclass
class CustomersWorld:
    """The customers domain wired to one CRM, one ERP, one raw log and one warehouse."""

    tmp_path: Path
    crm: RunningCrm
    erp: RunningErp
    clock: ScenarioClock

    def __post_init__(self) -> None:
        self.raw_log = RawLog(self.tmp_path / "raw")
        self.warehouse = Warehouse(self.tmp_path / "warehouse.duckdb")
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            "crm": CrmClient(
                base_url=self.crm.url,
                client_id=CRM_YAML["client_id"],
                client_secret=CRM_SECRET,
                backoff_base_seconds=0.01,
            ),
            "erp": ErpClient(
                base_url=self.erp.url,
                client_id=ERP_YAML["client_id"],
                client_secret=ERP_SECRET,
                backoff_base_seconds=0.01,
            ),
            "raw_log": RawLogResource(root=str(self.tmp_path / "raw")),
            "warehouse": WarehouseResource(path=str(self.tmp_path / "warehouse.duckdb")),
        }

    def seed_order_heads(self, *orders: dict) -> None:
        """The orders as the order stream leaves them: landed raw, staged, promoted to core.order_heads."""
        land_and_promote_orders(self.warehouse, self.raw_log, list(orders))

    def run(self, selection=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*customers_assets, *customers_checks],
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
            selection=selection,
        )

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.warehouse.connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()

    def golden(self) -> dict[str, dict]:
        rows = self.sql(f"SELECT {', '.join(GOLDEN_COLUMNS)} FROM core.customers")
        return {row[0]: dict(zip(GOLDEN_COLUMNS, row, strict=True)) for row in rows}

    def conflicts(self) -> list[tuple]:
        return self.sql(
            "SELECT customer_id, attribute, chosen_system, overridden_system, overridden_value, rule "
            "FROM core.customer_conflicts ORDER BY ALL"
        )


@contextmanager
def customers_world(tmp_path: Path, crm: dict, erp: dict = ERP_YAML) -> Iterator[CustomersWorld]:
    reader = _Reader(Path("customers-test.yaml"))
    clock = ScenarioClock(T0)
    with (
        start_crm(parse_crm(reader, crm), clock=clock) as running_crm,
        start_erp(parse_erp(reader, erp), clock=clock) as running_erp,
    ):
        world = CustomersWorld(tmp_path, running_crm, running_erp, clock)
        world.seed_order_heads(bob_order(), guest_order())
        yield world


def bob_order() -> dict:
    return load_fixture_order("monei_shopify_api_node/order/res/get.json")


def guest_order() -> dict:
    order = copy.deepcopy(bob_order())
    order.update(id=450789470, customer=None, email="walk-in@example.com")
    return order


def metadata_of(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def log_messages(world: CustomersWorld, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in world.instance.all_logs(result.run_id)]


# ---- the golden record --------------------------------------------------------------------------


def test_crm_address_wins_over_the_storefront_and_erp_credit_terms_appear(tmp_path):
    with customers_world(tmp_path, CRM_YAML) as world:
        result = world.run()
        assert result.success
        outcomes = check_outcomes(result)
        assert all(outcomes[name] for name in GATING_CHECKS), outcomes
        assert outcomes[CHECK_EVERY_CUSTOMER_HAS_EMAIL] and outcomes[CHECK_CONFLICTS_RESOLVED]

        bob = world.golden()[BOB]
        # The order's billing address is Ottawa; the CRM (system of record) says Louisville.
        assert (
            bob["address_line1"],
            bob["city"],
            bob["region"],
            bob["postal_code"],
            bob["country"],
        ) == ("Chestnut Street 92", "Louisville", "KY", "40202", "US")
        assert bob["phone"] == "+1 502 555 0199"
        assert (bob["segment"], bob["account_manager_email"]) == (
            "wholesale",
            "lena.fischer@shop.example",
        )
        assert (bob["email"], bob["first_name"], bob["last_name"]) == (
            "bob.norman@hostmail.com",
            "Bob",
            "Norman",
        )
        assert (bob["credit_limit_minor"], bob["currency"], bob["payment_terms"]) == (
            250000,
            "USD",
            "NET30",
        )
        assert sorted(bob["sources"]) == ["crm", "erp", "storefront"]
        assert orjson.loads(bob["attribute_sources"])["address"] == "crm"

        address_conflicts = [c for c in world.conflicts() if c[1] == "address"]
        assert [(c[2], c[3], c[5]) for c in address_conflicts] == [
            ("crm", "erp", "system_of_record"),
            ("crm", "storefront", "system_of_record"),
        ]
        storefront_side = address_conflicts[1][4]
        assert "123 Amoebobacterieae St" in storefront_side and "Ottawa" in storefront_side

        core = metadata_of(result, CUSTOMERS)
        assert core["customers"] == 1
        assert core["customers_by_source"] == {"crm": 1, "erp": 1, "storefront": 1}
        assert core["conflicts_by_attribute"] == {"address": 2, "phone": 1}
        assert core["guest_orders"] == 1 and core["rows_rejected"] == 0
        assert core["balance_holds"] is True


def test_every_raw_record_carries_its_provenance_and_no_secret_reaches_the_metadata(tmp_path):
    with customers_world(tmp_path, CRM_YAML) as world:
        result = world.run()
        (crm_batch,) = world.raw_log.batches("crm", "accounts")
        (record,) = world.raw_log.read_records(crm_batch)
        assert record["source_system"] == "crm" and record["http_status"] == 200
        assert record["endpoint"].endswith("/services/data/v60.0/query")
        assert record["request_params"]["LastModifiedDate_after"] == "1999-12-31T23:50:00Z"
        assert record["payload"]["External_Id__c"] == BOB
        assert crm_batch.details["cursor_after"] == "2026-11-19T08:00:00Z"
        (erp_batch,) = world.raw_log.batches("erp", "customers")
        (erp_record,) = world.raw_log.read_records(erp_batch)
        assert erp_record["request_params"]["offset"] == "0"
        assert erp_batch.details["cursor_after"] == "2026-11-20T09:00:00Z"

        every_value = orjson.dumps(
            [
                {k: str(v.value) for k, v in e.materialization.metadata.items()}
                for e in result.get_asset_materialization_events()
            ]
        ).decode()
        every_value += " ".join(str(m) for m in log_messages(world, result))
        for secret in (CRM_SECRET, ERP_SECRET):
            assert secret not in every_value
            assert secret not in crm_batch.path.read_text() + erp_batch.path.read_text()


def test_a_second_poll_without_changes_lands_duplicates_and_changes_nothing(tmp_path):
    with customers_world(tmp_path, CRM_YAML) as world:
        first = world.run()
        assert first.success
        golden, conflicts = world.golden(), world.conflicts()
        world.clock.advance(timedelta(hours=1))
        second = world.run()
        assert second.success
        # each order's customer is read from its document once per order version
        assert metadata_of(first, CUSTOMERS)["orders_read_now"] == 2
        assert metadata_of(second, CUSTOMERS)["orders_read_now"] == 0

        for source, stream in (("crm", "accounts"), ("erp", "customers")):
            batches = world.raw_log.batches(source, stream)
            assert len(batches) == 2
            # The lookback re-reads the newest change: it lands again, raw stays append-only.
            assert batches[1].records == 1
        later_batches = world.sql(
            "SELECT stream, records_read, staged, quarantined, duplicates FROM staging.batches "
            "WHERE staged_run_id = ? ORDER BY stream",
            [second.run_id],
        )
        assert later_batches == [(CRM_STREAM, 1, 0, 0, 1), (ERP_STREAM, 1, 0, 0, 1)]
        assert world.sql("SELECT count(*) FROM staging.customer_references") == [(2,)]
        assert world.golden() == golden
        assert world.conflicts() == conflicts
        assert metadata_of(second, STAGING_REFERENCES)["duplicates"] == 2


# ---- bad input ------------------------------------------------------------------------------------


def test_a_malformed_crm_row_is_quarantined_with_its_rule_and_the_balance_holds(tmp_path):
    lovelace = {
        "external_id": "207119560",
        "LastName": "Lovelace",
        "FirstName": "Ada",
        "BillingCity": "London",
        "BillingCountry": "GB",
        "Customer_Segment__c": "VIP",
    }
    crm = crm_yaml(lovelace, enterprise_account("207119552", "Northwind Traders"))
    with customers_world(tmp_path, crm) as world:
        result = world.run()
        assert result.success
        assert check_outcomes(result)[CHECK_QUARANTINE_SHARE] is True

        ((batch_id, raw_ref, record_key, rule, field, message, contract),) = world.sql(
            "SELECT batch_id, raw_ref, record_key, rule, field, message, contract FROM ops.quarantine "
            "WHERE stream = ?",
            [CRM_STREAM],
        )
        assert (record_key, rule, field) == (
            "207119552",
            "value_not_allowed",
            "Customer_Segment__c",
        )
        assert "Enterprise" in message and contract == "crm_accounts v1"
        # The raw reference leads back to exactly that record.
        (manifest,) = world.raw_log.batches("crm", "accounts")
        index = int(raw_ref.rsplit("#", 1)[1])
        quarantined = next(
            r for r in world.raw_log.read_records(manifest) if r["record_index"] == index
        )
        assert quarantined["payload"]["Customer_Segment__c"] == "Enterprise"

        assert world.sql(
            "SELECT records_read, staged, quarantined, duplicates FROM staging.batches "
            "WHERE stream = ? AND batch_id = ?",
            [CRM_STREAM, batch_id],
        ) == [(3, 2, 1, 0)]
        assert world.sql(
            "SELECT holds FROM ops.count_balances WHERE asset_key = ? AND scope = ?",
            [STAGING_REFERENCES.to_user_string(), f"{CRM_STREAM}:{batch_id}"],
        ) == [(True,)]
        staging = metadata_of(result, STAGING_REFERENCES)
        assert (staging["records_read"], staging["staged"], staging["quarantined"]) == (4, 3, 1)
        assert staging["balance_holds"] is True

        golden = world.golden()
        assert set(golden) == {BOB, "207119560"}
        assert golden["207119560"]["segment"] == "vip"


def test_a_batch_that_fails_the_gate_stays_out_of_core_customers(tmp_path):
    # Two of three accounts carry a segment the contract does not know: a change at the source.
    crm = crm_yaml(
        enterprise_account("207119552", "Northwind Traders"),
        enterprise_account("207119553", "Contoso"),
    )
    with customers_world(tmp_path, crm) as world:
        result = world.run()
        assert check_outcomes(result)[CHECK_QUARANTINE_SHARE] is False
        description = check_description(result, CHECK_QUARANTINE_SHARE)
        assert "2 of 3 records quarantined" in description
        assert "value_not_allowed on Customer_Segment__c (2)" in description
        assert STAGING_REFERENCES.to_user_string() in materialized(result)
        assert CUSTOMERS.to_user_string() not in materialized(result)
        verdicts = dict(
            world.sql(
                "SELECT stream, bool_and(passed) FROM ops.batch_gates GROUP BY stream ORDER BY 1"
            )
        )
        assert verdicts == {CRM_STREAM: False, ERP_STREAM: True}
        # Bob's account was staged; only the gate keeps it out.
        assert world.sql(
            "SELECT count(*) FROM staging.customer_references WHERE system = 'crm'"
        ) == [(1,)]

        later = world.run(selection=[CUSTOMERS])
        assert CUSTOMERS.to_user_string() in materialized(later)
        bob = world.golden()[BOB]
        assert sorted(bob["sources"]) == ["erp", "storefront"]
        # Without the CRM, the address falls back to the storefront and the segment is unknown.
        assert (bob["address_line1"], bob["city"]) == ("123 Amoebobacterieae St", "Ottawa")
        assert bob["account_manager_email"] is None
        assert (bob["payment_terms"], bob["credit_limit_minor"]) == ("NET30", 250000)
        assert {c[3] for c in world.conflicts() if c[1] == "address"} == {"erp"}


def test_core_counts_and_logs_an_order_it_cannot_read_and_the_balance_still_holds(tmp_path):
    unreadable = copy.deepcopy(bob_order())
    unreadable["id"] = 450789471
    unreadable["customer"]["id"] = 207119570
    unreadable["customer"]["tags"] = {"segment": "vip"}  # tags are a comma-separated string
    with customers_world(tmp_path, CRM_YAML) as world:
        world.seed_order_heads(unreadable)
        result = world.run()
        assert result.success
        core = metadata_of(result, CUSTOMERS)
        assert core["rows_rejected"] == 1
        assert core["rows_rejected_by_source"] == {"storefront": 1}
        assert core["balance_holds"] is True
        assert "207119570" not in world.golden()
        assert any(
            "core/order_heads:450789471@" in message and "customer.tags" in message
            for message in log_messages(world, result)
        )


def test_a_customer_only_the_crm_knows_has_no_email_and_the_check_names_it(tmp_path):
    walk_in = {
        "external_id": "crm-only-77",
        "Name": "Fabrikam",
        "BillingCountry": "DE",
        "last_modified": "2026-11-19T07:00:00Z",
    }
    with customers_world(tmp_path, crm_yaml(walk_in)) as world:
        result = world.run()
        assert check_outcomes(result)[CHECK_EVERY_CUSTOMER_HAS_EMAIL] is False
        assert "customer crm-only-77 (known to crm) has no email" in check_description(
            result, CHECK_EVERY_CUSTOMER_HAS_EMAIL
        )
        assert world.golden()[BOB]["email"] == "bob.norman@hostmail.com"


# ---- the checks' judgement, directly ------------------------------------------------------------------


def test_two_source_records_claiming_one_customer_block_the_batch():
    crm = load_contract("crm_accounts")
    at = datetime(2026, 11, 19, 8, 0)
    frame = pd.DataFrame(
        [
            ["crm", BOB, "001Sb0000000001AAA", at, "h1"],
            ["crm", BOB, "001Sb0000000007AAA", at, "h2"],
            ["crm", "207119560", "001Sb0000000002AAA", at, "h3"],
        ],
        columns=["system", "customer_id", "source_record_id", "modified_at", "payload_hash"],
    )
    passed, reason = judge_keys(frame, crm)
    assert passed is False
    assert f"{BOB} (001Sb0000000001AAA, 001Sb0000000007AAA)" in reason
    # The same record twice (changed while it was paged) is one record, not two claimants.
    same_record = frame.assign(source_record_id=["001Sb0000000001AAA"] * 2 + ["001Sb0000000002AAA"])
    passed, reason = judge_keys(same_record, crm)
    assert passed is True and "from crm_accounts v1" in reason


def test_the_keys_check_applies_the_contracts_generated_expectations():
    at = datetime(2026, 11, 20, 9, 0)
    frame = pd.DataFrame(
        [
            ["erp", BOB, "CUS-000001", at, "h1"],
            ["erp", "207119560", "CUS-000002", None, "h2"],
            ["erp", "207119561", "CUS-000002", at, "h2"],
        ],
        columns=["system", "customer_id", "source_record_id", "modified_at", "payload_hash"],
    )
    passed, reason = judge_keys(frame, load_contract("erp_customers"))
    # updated_at is required by erp_customers: its staged column may not be null; and one
    # record version (source record, payload hash) is staged once.
    assert passed is False
    assert "expect_compound_columns_to_be_unique: 2 of 3 unexpected" in reason
    assert "not_be_null on 'modified_at': 1 of 3" in reason


def test_the_quarantine_share_is_judged_against_the_contract_limit():
    assert judge_quarantine_share(4, {"value_not_allowed on Customer_Segment__c": 2}, 0.5)[0]
    passed, reason = judge_quarantine_share(3, {"required_field_null on External_Id__c": 2}, 0.5)
    assert not passed and "2 of 3 records quarantined (67%, allowed 50%)" in reason
    assert judge_quarantine_share(0, {}, 0.5) == (True, "empty batch")


# ---- the conflicts check's judgement, directly ------------------------------------------------------


def test_a_conflict_the_registry_would_not_have_decided_that_way_is_reported():
    registry = load_ownership()
    good = {
        "customer_id": BOB,
        "attribute": "address",
        "chosen_system": "crm",
        "overridden_system": "storefront",
        "rule": "system_of_record",
    }
    assert conflicts_against_registry([good], registry) == []
    wrong_winner = {**good, "chosen_system": "storefront", "overridden_system": "crm"}
    no_rule = {**good, "rule": None}
    problems = conflicts_against_registry([wrong_winner, no_rule], registry)
    assert len(problems) == 3
    assert "storefront won over crm" in problems[1]
    assert "rule None" in problems[2]


def test_a_conflict_on_an_attribute_the_registry_does_not_know_is_reported():
    problems = conflicts_against_registry(
        [
            {
                "customer_id": BOB,
                "attribute": "shoe_size",
                "chosen_system": "crm",
                "overridden_system": "erp",
                "rule": "system_of_record",
            }
        ],
        load_ownership(),
    )
    assert len(problems) == 1 and "shoe_size" in problems[0]
