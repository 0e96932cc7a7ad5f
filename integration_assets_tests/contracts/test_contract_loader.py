"""Contracts are read strictly, carry their history, and can be upgraded through the override dir."""

import pandas as pd
import pytest
import yaml

from integration_assets.contracts import ContractError, load_contract
from integration_assets.contracts.loader import CONTRACTS_DIR, load_contract_file
from integration_assets.contracts.location import CONTRACTS_DIR_ENV
from integration_assets.quality import gx_runner
from integration_assets.quality.contract_suite import contract_suite
from integration_assets.streams.contract_rules import typed_fields

SOURCE_STREAM_CONTRACTS = [
    "storefront_orders",
    "storefront_products",
    "payments_charges",
    "payments_refunds",
    "payments_balance_transactions",
    "payments_disputes",
    "payments_payouts",
    "crm_accounts",
    "erp_customers",
]


def contract_yaml(name: str) -> dict:
    return yaml.safe_load((CONTRACTS_DIR / f"{name}.yaml").read_text())


def write(tmp_path, raw: dict, name: str = "storefront_orders"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("name", SOURCE_STREAM_CONTRACTS)
def test_every_source_stream_contract_loads_with_its_history_ending_at_its_version(name):
    contract = load_contract(name)
    assert contract.history and contract.history[-1].version == contract.version
    assert contract.owner and contract.system_of_record and contract.key


def test_an_unknown_key_is_an_error_naming_the_file_and_the_path(tmp_path):
    raw = contract_yaml("storefront_orders")
    raw["fields"]["total_price"]["requird"] = True
    path = write(tmp_path, raw)
    with pytest.raises(ContractError) as error:
        load_contract_file(path)
    assert str(error.value).startswith(f"{path}: fields.total_price.requird: unknown key")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw.update(version=2), "history: versions must ascend and end at"),
        (lambda raw: raw["fields"]["id"].update(type="int"), "fields.id.type: must be one of"),
        (lambda raw: raw["fields"]["id"].update(required="yes"), "fields.id.required: expected"),
        (lambda raw: raw.pop("owner"), "<top level>: missing keys ['owner']"),
        (lambda raw: raw["history"][0].pop("by"), "history[0]: missing by"),
        (
            lambda raw: raw["fields"]["total_price"].update(source="total_tax"),
            "fields: a source name is used twice or is another field",
        ),
    ],
)
def test_a_contract_that_does_not_say_what_it_must_is_refused(tmp_path, change, message):
    raw = contract_yaml("storefront_orders")
    change(raw)
    with pytest.raises(ContractError, match="storefront_orders.yaml: ") as error:
        load_contract_file(write(tmp_path, raw))
    assert message in str(error.value)


def test_a_new_version_in_the_override_dir_replaces_the_packaged_one(tmp_path, monkeypatch):
    raw = contract_yaml("storefront_orders")
    raw["version"] = 2
    raw["history"].append(
        {"version": 2, "date": "2026-12-01", "change": "total_price renamed", "by": "ops"}
    )
    raw["fields"]["total_price"]["source"] = "total_price_amount"
    write(tmp_path, raw)
    assert load_contract("storefront_orders").version == 1
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path))
    v2 = load_contract("storefront_orders")
    assert v2.label == "storefront_orders v2"
    assert v2.field_rule("total_price").source_names == ("total_price_amount", "total_price")
    # Staging reads the value under its new name, and still under the old one.
    record = {"id": 1, "currency": "USD", "total_price_amount": "12.50"}
    partial = type(v2)(**{**v2.__dict__, "fields": (v2.field_rule("total_price"),)})
    assert typed_fields(record, partial, "USD") == {"total_price": 1250}
    assert typed_fields({"total_price": "1.00"}, partial, "USD") == {"total_price": 100}


def test_the_suite_generated_from_the_contract_catches_what_the_contract_forbids():
    contract = load_contract("storefront_orders")
    columns = {"id": "order_id", "currency": "currency", "financial_status": "financial_status"}
    suite = contract_suite(contract, columns, ["order_id", "currency"])
    good = pd.DataFrame(
        {"order_id": [1, 2], "currency": ["USD", "EUR"], "financial_status": ["paid", "pending"]}
    )
    assert all(outcome.success for outcome in gx_runner.validate(good, suite))
    bad = pd.DataFrame(
        {
            "order_id": [1, 1, 2],
            "currency": ["usd", "usd", "EUR"],
            "financial_status": ["paid", "paid", "lost"],
        }
    )
    failed = {(o.expectation, o.column) for o in gx_runner.validate(bad, suite) if not o.success}
    assert failed == {
        ("expect_compound_columns_to_be_unique", None),
        ("expect_column_values_to_match_regex", "currency"),
        ("expect_column_values_to_be_in_set", "financial_status"),
    }


def test_every_staging_asset_with_a_contract_shows_its_columns_generated_from_it():
    from integration_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    schemas = {
        key.to_user_string(): graph.get(key).metadata.get("dagster/column_schema")
        for key in graph.get_all_asset_keys()
        if key.to_user_string()
        in {
            "staging/storefront/orders",
            "staging/storefront/products",
            "staging/payments/objects",
            "staging/customers/references",
        }
    }
    assert all(schemas.values()), schemas
    orders = {column.name: column for column in schemas["staging/storefront/orders"].columns}
    assert orders["email"].tags == {"pii": "true"}
    assert "required" in orders["total_price"].description
    payments = {column.name for column in schemas["staging/payments/objects"].columns}
    assert {"payments_charges.amount", "payments_payouts.id"} <= payments
