"""The ownership guard as pure functions: which writes and which operator edits the registry allows."""

import pytest

from integration_assets.contracts.ownership import load_ownership
from integration_assets.delivery.ownership_guard import (
    OwnershipRefused,
    check_override,
    refuse_unowned_writes,
    write_refusal,
)
from integration_assets.delivery.planning import PlanResult
from integration_assets.streams.outbox import WriteIntent

REGISTRY = load_ownership()
GOLDEN = {
    "customer_id": "300000001",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lane",
    "phone": "+1 502 555 0101",
    "company": None,
    "is_company": False,
    "country": "US",
    "postal_code": "40202",
    "attribute_sources": '{"address": "crm", "email": "storefront", "first_name": "storefront", '
    '"last_name": "storefront", "phone": "crm"}',
}


def erp_customer(**payload) -> WriteIntent:
    body = {"name": "Ada Lane", "email": "ada@example.com", "is_company": False, **payload}
    return WriteIntent("erp", "customer", "300000001", body, "core/customers:300000001")


def test_a_write_of_golden_values_from_their_systems_of_record_passes():
    assert write_refusal(erp_customer(phone="+1 502 555 0101"), REGISTRY, GOLDEN) is None


def test_a_value_not_taken_from_the_golden_record_is_refused_naming_attribute_system_and_owner():
    # a mapping that read the phone from another system: the golden record took the CRM's
    reason = write_refusal(erp_customer(phone="+44 20 7946 0000"), REGISTRY, GOLDEN)
    assert reason.startswith("ownership: erp/customer 300000001: phone carries customer.phone")
    assert "system of record is crm (then storefront, erp)" in reason
    assert "owned by Customer Service (customer-service@example.com)" in reason
    assert "not the one core.customers took from crm" in reason
    assert "Correct it in crm (the next sync carries it)" in reason


def test_a_value_from_a_system_outside_the_precedence_is_refused():
    # the golden row says its email came from the CRM, which is not in email's precedence
    golden = {
        **GOLDEN,
        "attribute_sources": GOLDEN["attribute_sources"].replace(
            '"email": "storefront"', '"email": "crm"'
        ),
    }
    reason = write_refusal(erp_customer(), REGISTRY, golden)
    assert "email carries customer.email, whose system of record is storefront (then erp)" in reason
    assert "this value was taken from crm, which is neither" in reason
    # the same origin is fine for the phone, whose system of record is the CRM
    assert "phone" not in reason


def test_a_value_no_system_holds_is_refused_and_an_absent_golden_row_refuses_all():
    golden = {
        **GOLDEN,
        "phone": None,
        "attribute_sources": '{"email": "storefront", '
        '"first_name": "storefront", "last_name": "storefront"}',
    }
    reason = write_refusal(erp_customer(phone="+1 502 555 0199"), REGISTRY, golden)
    assert "no system has a value for it in core.customers, yet the write carries one" in reason
    assert "no golden record row" in write_refusal(erp_customer(), REGISTRY, None)


def test_an_undeclared_payload_field_refuses_the_write():
    reason = write_refusal(erp_customer(fax="+1 502 555 0102"), REGISTRY, GOLDEN)
    assert reason.startswith("ownership: erp/customer 300000001: field(s) fax not declared in")
    assert "deliveries.erp.customer.fields" in reason


def test_planner_sourced_writes_are_checked_against_the_declared_origin(tmp_path):
    reservation = WriteIntent(
        "wms",
        "reservation",
        "RES-1",
        {"order_id": "1", "status": "reserved", "lines": [{"sku": "MUG-1", "quantity": 1}]},
        "raw/storefront/orders#1",
    )
    assert write_refusal(reservation, REGISTRY) is None
    # a registry saying the WMS reservation's values are read from the CRM: the status and lines
    # are the warehouse's (then the storefront's), so the CRM may not supply them
    text = REGISTRY.source.read_text().replace(
        "      entity: reservation\n      values_from: storefront",
        "      entity: reservation\n      values_from: crm",
    )
    (tmp_path / "ownership.yaml").write_text(text)
    wrong = load_ownership(tmp_path / "ownership.yaml")
    reason = write_refusal(reservation, wrong)
    assert (
        "status carries reservation.status, whose system of record is warehouse (then storefront)"
        in reason
    )
    assert "owned by Warehouse Operations (warehouse-ops@example.com)" in reason


def test_refused_intents_move_to_the_quarantine_and_the_plan_still_balances():
    plan = PlanResult("erp", "customer", candidates=2)
    good = erp_customer(phone="+1 502 555 0101")
    other = WriteIntent(
        "erp",
        "customer",
        "300000002",
        {"name": "Bo", "email": "bo@example.com", "is_company": False},
        "core/customers:300000002",
    )
    plan.intents = [good, other]
    refused = refuse_unowned_writes(plan, REGISTRY, {"300000001": GOLDEN})
    assert list(refused) == ["300000002"]  # no golden row for it
    assert plan.intents == [good]
    (held,) = plan.quarantined
    assert held.external_id == "300000002" and held.reason.startswith("ownership: ")
    assert held.source_ref == "core/customers:300000002"
    assert plan.flags["ownership_refused"] == 1 and plan.balance().holds


def test_an_edit_of_a_field_the_target_does_not_own_needs_its_owner():
    with pytest.raises(OwnershipRefused) as refused:
        check_override(REGISTRY, "erp", "customer", ["email"])
    assert str(refused.value) == (
        "email is owned by the storefront (Customer Service, customer-service@example.com): "
        "correct it there, the next sync carries it; or, if its owner agreed, repeat with "
        "--owner-approved-by customer-service@example.com"
    )
    with pytest.raises(OwnershipRefused, match="'finance' is not its registered owner"):
        check_override(REGISTRY, "erp", "customer", ["email"], "finance")
    (approval,) = check_override(
        REGISTRY, "erp", "customer", ["email"], "Customer-Service@example.com"
    )
    assert approval.attribute == "customer.email" and approval.owner == "customer_service"


def test_an_edit_of_what_the_target_owns_needs_no_approval_and_unknown_fields_are_refused():
    assert check_override(REGISTRY, "erp", "credit_limit", ["credit_limit"]) == []
    # a WMS reservation's lines are the warehouse's own (wms is the warehouse)
    assert check_override(REGISTRY, "wms", "reservation", ["lines"]) == []
    with pytest.raises(OwnershipRefused, match="fax is not a field erp/customer writes carry"):
        check_override(REGISTRY, "erp", "customer", ["fax"], "customer_service")
    # a nested edit is an edit of its top-level field: the address belongs to the CRM
    with pytest.raises(
        OwnershipRefused,
        match=r"billing_address.postal_code \(customer.address\) is owned by the crm",
    ):
        check_override(REGISTRY, "erp", "customer", ["billing_address.postal_code"])
