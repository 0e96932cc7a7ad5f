"""The ownership registry: every attribute of every core entity has a system of record and an owner,
the shipped file says what the issue says, and a broken file fails with its path."""

from pathlib import Path

import pytest
import yaml

from integration_assets.contracts.ownership import (
    OWNERSHIP_FILE,
    OwnershipError,
    UnknownOwnershipEntry,
    load_ownership,
)
from integration_assets.defs.orders.core import CURRENT_COLUMNS
from integration_assets.defs.products.core import HISTORY_COLUMNS
from integration_assets.defs.returns.core import COLUMNS as RETURN_COLUMNS

REGISTRY = load_ownership()
CORE_ENTITIES = {
    "customer",
    "order",
    "order_line",
    "payment",
    "refund",
    "dispute",
    "payout",
    "inventory",
    "product",
    "return",
    "invoice",
    "credit_note",
    "reservation",
}


def test_every_attribute_of_every_entity_has_a_known_system_and_owner():
    # Read the file as plain YAML too, so this holds even if the loader were ever made lenient.
    raw = yaml.safe_load(OWNERSHIP_FILE.read_text())
    lacking = [
        f"{entity}.{name}"
        for entity, spec in raw["entities"].items()
        for name, attribute in spec["attributes"].items()
        if not attribute.get("system") or not attribute.get("owner")
    ]
    assert lacking == []
    for entity in REGISTRY.entities.values():
        assert entity.owner.key in REGISTRY.owners, entity.name
        for attribute in entity.attributes.values():
            where = f"{entity.name}.{attribute.name}"
            assert attribute.system in REGISTRY.systems, where
            assert REGISTRY.owners[attribute.owner.key] == attribute.owner, where
            assert attribute.owner.email and attribute.owner.slack, where
            assert attribute.description, where
            assert all(system in REGISTRY.systems for system in attribute.fallback), where


def test_covers_every_core_entity_and_the_five_systems():
    assert set(REGISTRY.entities) >= CORE_ENTITIES
    # the five working systems, and the pipeline itself for what only it derives (reconciliations)
    assert REGISTRY.systems == ("storefront", "payments", "warehouse", "erp", "crm", "integration")
    assert REGISTRY.system_of_target("wms") == "warehouse"
    for entity in REGISTRY.entities.values():
        assert set(entity.key) <= set(entity.attributes), entity.name


@pytest.mark.parametrize(
    ("entity", "attribute", "system"),
    [
        ("customer", "address", "crm"),
        ("customer", "email", "storefront"),
        ("customer", "credit_limit", "erp"),
        ("customer", "payment_terms", "erp"),
        ("order_line", "quantity", "storefront"),
        ("order_line", "sku", "storefront"),
        ("payment", "status", "payments"),
        ("inventory", "on_hand", "warehouse"),
        ("inventory", "committed", "storefront"),
        ("invoice", "amount_minor", "erp"),
        ("credit_note", "amount_minor", "erp"),
    ],
)
def test_systems_of_record_are_the_ones_the_issue_names(entity, attribute, system):
    assert REGISTRY.system_of_record(entity, attribute) == system


def test_core_table_columns_are_registry_attributes():
    # Lineage and bookkeeping columns that no system owns: they say where a row came from or how old it is.
    bookkeeping = set(REGISTRY.lineage_columns)
    for entity, columns in [
        ("order", CURRENT_COLUMNS),
        ("product", HISTORY_COLUMNS),
        ("return", [name for name, _, _ in RETURN_COLUMNS]),
        ("inventory", ["sku", "on_hand", "committed", "available", "on_hand_by_location"]),
        (
            "ledger_entry",
            ["entry_id", "kind", "amount_minor", "currency", "occurred_at", "balance_transaction"],
        ),
    ]:
        missing = set(columns) - bookkeeping - set(REGISTRY.columns(entity))
        assert missing == set(), entity


def test_precedence_owner_and_escalation():
    assert REGISTRY.precedence("customer", "address") == ("crm", "storefront", "erp")
    assert REGISTRY.precedence("customer", "payment_terms") == ("erp",)
    assert REGISTRY.owner("customer", "credit_limit").key == "finance"
    assert REGISTRY.owner("customer", "address").email == "customer-service@example.com"
    assert REGISTRY.entity_owner("reservation").key == "warehouse_ops"
    assert (
        REGISTRY.escalation_owner("erp", "credit_limit").key == "sales_ops"
    )  # the customer's steward
    assert REGISTRY.escalation_owner("erp", "invoice").key == "finance"
    assert REGISTRY.escalation_owner("wms", "reservation").key == "warehouse_ops"
    assert REGISTRY.attribute_of_column("customer", "postal_code").name == "address"
    assert "address" in REGISTRY.attributes("customer")


def test_every_outbox_delivery_is_mapped():
    assert dict(REGISTRY.deliveries) == {
        ("erp", "customer"): "customer",
        ("erp", "credit_limit"): "customer",
        ("erp", "sales_order"): "order",
        ("erp", "invoice"): "invoice",
        ("erp", "credit_note"): "credit_note",
        ("erp", "payment_applied"): "payment",
        ("crm", "account"): "customer",
        ("crm", "contact"): "customer",
        ("wms", "reservation"): "reservation",
    }


def test_every_system_names_who_answers_for_the_connection_to_it():
    # The owner alerted when a source changes under the integration (ops/source_signals).
    assert {system: owner.key for system, owner in REGISTRY.system_owners.items()} == {
        "storefront": "ecommerce_ops",
        "payments": "finance",
        "warehouse": "warehouse_ops",
        "erp": "finance",
        "crm": "sales_ops",
        "integration": "integrations",
    }
    # The audit trail names the WMS by its outbox target; it is the registry's warehouse.
    assert REGISTRY.system_owner("wms").email == "warehouse-ops@example.com"
    with pytest.raises(UnknownOwnershipEntry, match="no system 'sap'"):
        REGISTRY.system_owner("sap")


def test_unknown_lookups_raise_a_key_error_that_says_what_exists():
    with pytest.raises(KeyError) as error:
        REGISTRY.escalation_owner("erp", "purchase_order")
    assert isinstance(error.value, UnknownOwnershipEntry)
    assert str(error.value).startswith(f"{OWNERSHIP_FILE}: no delivery erp/purchase_order")
    assert "erp/sales_order" in str(error.value)
    with pytest.raises(UnknownOwnershipEntry, match="has no attribute 'shoe_size'"):
        REGISTRY.owner("customer", "shoe_size")
    with pytest.raises(UnknownOwnershipEntry, match="no entity 'coupon'"):
        REGISTRY.entity_owner("coupon")


def _broken(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(OWNERSHIP_FILE.read_text())
    edit(raw)
    path = tmp_path / "ownership.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _email(raw: dict) -> dict:
    return raw["entities"]["customer"]["attributes"]["email"]


@pytest.mark.parametrize(
    ("edit", "where", "problem"),
    [
        (
            lambda raw: _email(raw).pop("owner"),
            "entities.customer.attributes.email.owner",
            "missing",
        ),
        (
            lambda raw: _email(raw).pop("system"),
            "entities.customer.attributes.email.system",
            "missing",
        ),
        (
            lambda raw: _email(raw).update(system="sap"),
            "entities.customer.attributes.email.system",
            "unknown system 'sap'",
        ),
        (
            lambda raw: _email(raw).update(owner="marketing"),
            "entities.customer.attributes.email.owner",
            "unknown owner 'marketing'",
        ),
        (
            lambda raw: _email(raw).update(sytem="crm"),
            "entities.customer.attributes.email.sytem",
            "unknown key",
        ),
        (
            lambda raw: _email(raw).update(fallback=["erp", "erp"]),
            "entities.customer.attributes.email.fallback[1]",
            "already in the precedence",
        ),
        (
            lambda raw: _email(raw).update(columns=["phone"]),
            "entities.customer.attributes.phone.columns[0]",
            "already belongs to attribute 'email'",
        ),
        (
            lambda raw: raw["entities"]["order"].update(owner="nobody"),
            "entities.order.owner",
            "unknown owner 'nobody'",
        ),
        (
            lambda raw: raw["entities"]["order"].update(key=["order_number"]),
            "entities.order.key[0]",
            "unknown key attribute 'order_number'",
        ),
        (
            lambda raw: raw["deliveries"]["erp"]["invoice"].update(entity="bill"),
            "deliveries.erp.invoice.entity",
            "unknown entity 'bill'",
        ),
        (
            lambda raw: raw["deliveries"]["erp"]["customer"]["fields"].update(fax="customer.fax"),
            "deliveries.erp.customer.fields.fax",
            "'customer.fax' is not a registry attribute",
        ),
        (
            lambda raw: raw["deliveries"]["erp"]["customer"]["fields"].update(
                total="order.total_price_minor"
            ),
            "deliveries.erp.customer.fields.total",
            "the golden record (core.customers) holds customer attributes only",
        ),
        (
            lambda raw: raw["deliveries"]["erp"]["invoice"]["fields"]["amount"].update(
                **{"from": "sap"}
            ),
            "deliveries.erp.invoice.fields.amount.from",
            "unknown system 'sap'",
        ),
        (
            lambda raw: raw["deliveries"].update(sap={}),
            "deliveries.sap",
            "unknown outbox target 'sap'",
        ),
        (
            lambda raw: raw["entities"]["refund"].update(tables=["core.orders_current"]),
            "entities.refund.tables[0]",
            "already listed by entity 'order'",
        ),
        (
            lambda raw: raw["entities"]["refund"].update(tables=["refunds"]),
            "entities.refund.tables[0]",
            "name a core table",
        ),
        (
            lambda raw: raw["owners"]["finance"].update(email="finance"),
            "owners.finance.email",
            "not an email address",
        ),
        (lambda raw: raw.update(owner={}), "owner", "unknown key"),
        (
            lambda raw: raw["systems"]["erp"].pop("owner"),
            "systems.erp.owner",
            "missing",
        ),
        (
            lambda raw: raw["systems"]["crm"].update(owner="sales"),
            "systems.crm.owner",
            "unknown owner 'sales'",
        ),
    ],
)
def test_a_broken_file_fails_naming_the_file_and_the_path(tmp_path, edit, where, problem):
    path = _broken(tmp_path, edit)
    with pytest.raises(OwnershipError) as error:
        load_ownership(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert problem in message


def test_unreadable_files_fail_with_the_file_name(tmp_path):
    bad = tmp_path / "ownership.yaml"
    bad.write_text("owners: [unclosed\n")
    with pytest.raises(OwnershipError, match=f"^{bad}: not valid YAML"):
        load_ownership(bad)
    with pytest.raises(OwnershipError, match="does not exist"):
        load_ownership(tmp_path / "absent.yaml")
