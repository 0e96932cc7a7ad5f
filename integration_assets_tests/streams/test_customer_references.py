"""What staging makes of a CRM account row or an ERP customer row: a typed version or the rule it broke."""

from datetime import UTC, datetime

import pytest

from integration_assets.contracts import load_contract
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.customer_references import (
    RULE_UNREADABLE,
    StagedReference,
    flattened,
    record_key,
    stage_reference,
)

CRM = load_contract("crm_accounts")
ERP = load_contract("erp_customers")


def crm_row(**changes) -> dict:
    row = {
        "attributes": {"type": "Account", "url": "/services/data/v60.0/sobjects/Account/001A"},
        "Id": "001Sb0000000001AAA",
        "External_Id__c": "207119551",
        "Name": "Bob Norman",
        "BillingStreet": "Chestnut Street 92",
        "BillingCity": "Louisville",
        "BillingState": "KY",
        "BillingPostalCode": "40202",
        "BillingCountry": "US",
        "Phone": None,
        "Industry": None,
        "Customer_Segment__c": "Wholesale",
        "OwnerId": "005Sb0000000021AAA",
        "Owner": {"attributes": {"type": "User"}, "Email": "lena@shop.example"},
        "LastModifiedDate": "2026-11-19T08:00:00.000+0000",
    }
    row.update(changes)
    return row


def erp_row(**record_changes) -> dict:
    record = {
        "name": "Bob Norman",
        "email": "bob.norman@hostmail.com",
        "billing_address": {"line1": "PO Box 7", "city": "Louisville", "country": "US"},
        "credit_limit": "2500.00",
        "payment_terms": "NET30",
    }
    record.update(record_changes)
    return {
        "id": "CUS-000001",
        "external_id": "207119551",
        "type": "customer",
        "version": 1,
        "record": record,
        "updated_at": "2026-11-20T09:00:00+00:00",
    }


def test_nested_fields_get_dotted_names_and_salesforce_annotations_do_not():
    view = flattened(crm_row())
    assert view["Owner.Email"] == "lena@shop.example"
    assert "attributes.type" not in view and "Owner.attributes.type" not in view
    assert flattened(erp_row())["record.billing_address.country"] == "US"


def test_a_crm_account_is_keyed_by_its_external_id_and_versioned_by_last_modified():
    staged = stage_reference("crm", crm_row(), CRM, "USD")
    assert isinstance(staged, StagedReference)
    assert (staged.customer_id, staged.source_record_id) == ("207119551", "001Sb0000000001AAA")
    assert staged.modified_at == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    assert staged.currency is None


def test_an_account_made_by_hand_in_the_crm_has_no_external_id_and_breaks_the_contract():
    violation = stage_reference("crm", crm_row(External_Id__c=None), CRM, "USD")
    assert violation == Violation(
        "required_field_null", "External_Id__c", "required field 'External_Id__c' is null"
    )
    assert record_key("crm", crm_row(External_Id__c=None)) == "001Sb0000000001AAA"


def test_a_segment_the_contract_does_not_know_names_the_field():
    violation = stage_reference("crm", crm_row(Customer_Segment__c="Enterprise"), CRM, "USD")
    assert (violation.rule, violation.field) == ("value_not_allowed", "Customer_Segment__c")


def test_an_erp_credit_limit_without_a_currency_is_in_the_company_currency():
    staged = stage_reference("erp", erp_row(), ERP, "EUR")
    assert isinstance(staged, StagedReference)
    assert (staged.customer_id, staged.source_record_id, staged.currency) == (
        "207119551",
        "CUS-000001",
        "EUR",
    )
    own_currency = stage_reference("erp", erp_row(currency="GBP"), ERP, "EUR")
    assert own_currency.currency == "GBP"
    no_limit = stage_reference("erp", erp_row(credit_limit=None), ERP, "EUR")
    assert no_limit.currency is None


@pytest.mark.parametrize(
    ("changes", "rule", "field"),
    [
        ({"payment_terms": "NET45"}, "value_not_allowed", "record.payment_terms"),
        ({"credit_limit": "lots"}, "bad_money", "record.credit_limit"),
        ({"currency": "dollars"}, "bad_currency", "record.currency"),
        # The contract cannot see it; the golden record's reader can, and staging asks it too.
        ({"is_company": "yes"}, RULE_UNREADABLE, "record.is_company"),
    ],
)
def test_an_erp_record_that_breaks_a_rule_names_the_rule_and_the_field(changes, rule, field):
    violation = stage_reference("erp", erp_row(**changes), ERP, "USD")
    assert isinstance(violation, Violation)
    assert (violation.rule, violation.field) == (rule, field)


def test_a_row_that_is_not_an_object_is_quarantined_not_crashed_on():
    assert stage_reference("erp", ["not", "a", "row"], ERP, "USD").rule == "not_an_object"
    assert record_key("erp", ["not", "a", "row"]) is None
