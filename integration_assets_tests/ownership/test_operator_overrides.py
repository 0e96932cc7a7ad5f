"""Operator edits of dead letters in a real DuckDB file: refused for another system's attribute
(nothing changes), accepted with that attribute's owner's approval (audited), and free for what the
target itself owns."""

import orjson
import pytest

from integration_assets.storage import outbox as store
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams import outbox as rules


def dead_letter(warehouse: Warehouse, entity: str, payload: dict) -> str:
    intent = rules.WriteIntent("erp", entity, "300000001", payload, "core/customers:300000001")
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", entity, [intent], "run-1")
        (row,) = store.due(con, "erp", entity)
    transition = rules.after_attempt(0, "rejected", 400, "invalid", "validation", None, 5)
    with warehouse.transaction() as con:
        store.record_attempt(con, row, transition, "run-1")
    return row.idempotency_key


def test_edit_of_the_storefronts_email_for_the_erp_waits_for_its_owner(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    key = dead_letter(warehouse, "customer", {"name": "Ada Lane", "email": "ada@example..com"})
    with warehouse.transaction() as con, pytest.raises(store.OutboxError) as refused:
        store.retry(con, key, "lena", "typo", {"email": "ada@example.com"})
    assert "email is owned by the storefront (Customer Service" in str(refused.value)
    with warehouse.connect() as con:
        row = store.get_row(con, key)
        assert row["status"] == "dead" and row["override"] is None  # nothing changed
        assert store.actions(con, key) == []
    with warehouse.transaction() as con:
        store.retry(
            con,
            key,
            "lena",
            "typo",
            {"email": "ada@example.com"},
            owner_approved_by="customer-service@example.com",
        )
        (again,) = store.due(con, "erp", "customer")
        (action,) = store.actions(con, key)
    assert again.payload_to_send()["email"] == "ada@example.com"
    details = orjson.loads(action["details"])
    assert details["owner_approved_by"] == "customer-service@example.com"
    assert details["owner_approvals"][0]["system_of_record"] == "storefront"


def test_edit_of_what_the_erp_owns_proceeds_without_approval(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    key = dead_letter(warehouse, "credit_limit", {"credit_limit": "50000.00", "currency": "USD"})
    with warehouse.transaction() as con:
        store.retry(con, key, "fin", "limit too high for the ERP", {"credit_limit": "5000.00"})
        (again,) = store.due(con, "erp", "credit_limit")
        (action,) = store.actions(con, key)
    assert again.payload_to_send()["credit_limit"] == "5000.00"
    assert "owner_approvals" not in orjson.loads(action["details"])


def test_an_operator_request_carrying_an_undeclared_field_is_refused(tmp_path):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    intent = rules.WriteIntent(
        "erp",
        "credit_limit",
        "300000001",
        {"credit_limit": "5000.00", "currency": "USD", "payment_terms": "NET90"},
        "operator:fin",
        "credit_limit_change",
    )
    refusal = "field\\(s\\) payment_terms not declared"
    with warehouse.transaction() as con, pytest.raises(store.OutboxError, match=refusal):
        store.request_write(con, intent, "fin", "raise")
    with warehouse.connect() as con:
        assert store.counts_by_status(con, "erp", "credit_limit") == {}
