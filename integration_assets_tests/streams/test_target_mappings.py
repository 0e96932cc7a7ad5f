"""Target transforms: golden customers and Shopify orders (real fixtures and sandbox-rendered orders)
into CRM, ERP and WMS writes, with every lookup counted and every held-back write saying why."""

import copy
from datetime import UTC, datetime, timedelta

import pytest

from integration_assets.sandbox.scenario import SCENARIOS_DIR, load_scenario
from integration_assets.sandbox.storefront_orders import OrderBook
from integration_assets.streams.crm_mapping import (
    CrmMappingError,
    crm_account,
    crm_contact,
    load_crm_mapping,
)
from integration_assets.streams.erp_mapping import (
    erp_credit_limit,
    erp_credit_note,
    erp_customer,
    erp_invoice,
    erp_payment_applied,
    erp_sales_order,
)
from integration_assets.streams.mapped import aggregate_lookups, failed_lookups
from integration_assets.streams.wms_mapping import unfulfilled_by_sku, wms_reservation
from integration_assets_tests.conftest import load_fixture_order

TINY = load_scenario(SCENARIOS_DIR / "tiny.yaml")
BOOK = OrderBook(TINY)
START = TINY.clock.start
HAPPY, EDITED, CANCELLED, REFUNDED = BOOK.order_ids()
KNOWN = {"207119551", "300000002"}
PICKLISTS = {"Customer_Segment__c": {"Retail", "Wholesale", "VIP", "Marketplace"}}
PERSON_TYPE, BUSINESS_TYPE = "012PERSON000001", "012BUSINESS00001"
DEFAULT_OWNER = "005INTEGRATION01"
LENA = {
    "Id": "005LENA000000001",
    "Name": "Lena Fischer",
    "Email": "lena.fischer@shop.example",
    "IsActive": True,
}


def sandbox_order(order_id: int, hours: float) -> dict:
    served = BOOK.order_at(order_id, START + timedelta(hours=hours))
    assert served is not None
    return copy.deepcopy(served.body)


def real_order() -> dict:
    return load_fixture_order("monei_shopify_api_node/order/res/get.json")


def golden(**changes) -> dict:
    row = {
        "customer_id": "207119551",
        "email": "bob.norman@hostmail.com",
        "first_name": "Bob",
        "last_name": "Norman",
        "phone": "+1 502 555 0100",
        "company": None,
        "is_company": False,
        "address_line1": "Chestnut Street 92",
        "address_line2": "Apt 4",
        "city": "Louisville",
        "region": "KY",
        "postal_code": "40202",
        "country": "US",
        "segment": "wholesale",
        "account_manager_email": "Lena.Fischer@shop.example",
        "credit_limit_minor": 250000,
        "currency": "USD",
        "payment_terms": "NET30",
        "sources": ["storefront", "crm", "erp"],
        "attribute_sources": "{}",
    }
    row.update(changes)
    return row


def account(row: dict, owners: dict | None = None, picklists: dict | None = None):
    return crm_account(
        row,
        {"lena.fischer@shop.example": [LENA]} if owners is None else owners,
        DEFAULT_OWNER,
        PICKLISTS if picklists is None else picklists,
        PERSON_TYPE,
        BUSINESS_TYPE,
    )


# ---- CRM ------------------------------------------------------------------------------------------------


def test_a_person_becomes_a_person_account():
    mapped = account(golden())
    assert (mapped.target, mapped.entity, mapped.external_id) == ("crm", "account", "207119551")
    assert mapped.payload == {
        "RecordTypeId": PERSON_TYPE,
        "FirstName": "Bob",
        "LastName": "Norman",
        "PersonEmail": "bob.norman@hostmail.com",
        "Phone": "+1 502 555 0100",
        "BillingStreet": "Chestnut Street 92\nApt 4",
        "BillingCity": "Louisville",
        "BillingState": "KY",
        "BillingPostalCode": "40202",
        "BillingCountry": "US",
        "Customer_Segment__c": "Wholesale",
        "OwnerId": LENA["Id"],
    }
    assert mapped.quarantine is None and mapped.flags == ()
    assert mapped.lookups == (
        ("picklist:Customer_Segment__c", "mapped"),
        ("crm_owner_by_email", "found"),
    )
    assert crm_contact(golden(), {}, DEFAULT_OWNER) is None  # a person account is its own contact


def test_a_company_becomes_a_business_account_with_a_contact():
    row = golden(company="Norman Audio GmbH", is_company=True, address_line2=None)
    mapped = account(row)
    assert mapped.payload["RecordTypeId"] == BUSINESS_TYPE
    assert mapped.payload["Name"] == "Norman Audio GmbH"
    assert not {"FirstName", "LastName", "PersonEmail"} & set(mapped.payload)
    assert mapped.payload["BillingStreet"] == "Chestnut Street 92"
    contact = crm_contact(row, {"lena.fischer@shop.example": [LENA]}, DEFAULT_OWNER)
    assert contact.payload == {
        "FirstName": "Bob",
        "LastName": "Norman",
        "Email": "bob.norman@hostmail.com",
        "Phone": "+1 502 555 0100",
        "Account": {"External_Id__c": "207119551"},
        "OwnerId": LENA["Id"],
    }
    assert contact.depends_on == (("crm", "account", "207119551"),)


def test_no_owner_found_falls_back_to_the_default_owner_with_a_flag():
    mapped = account(golden(account_manager_email="gone@shop.example"))
    assert mapped.payload["OwnerId"] == DEFAULT_OWNER
    assert "owner_defaulted" in mapped.flags
    assert ("crm_owner_by_email", "missing") in mapped.lookups
    assert mapped.quarantine is None
    no_email = account(golden(account_manager_email=None))
    assert no_email.payload["OwnerId"] == DEFAULT_OWNER
    assert "owner_defaulted" in no_email.flags
    assert ("crm_owner_by_email", "no_email") in no_email.lookups


def test_several_active_owners_quarantine_the_account_and_inactive_users_do_not_count():
    twin = {**LENA, "Id": "005LENA000000002"}
    mapped = account(golden(), owners={"lena.fischer@shop.example": [LENA, twin]})
    assert mapped.quarantine == "owner_ambiguous"
    assert "OwnerId" not in mapped.payload
    assert mapped.details == {"owner_candidates": [LENA["Id"], twin["Id"]]}
    assert ("crm_owner_by_email", "ambiguous") in mapped.lookups
    retired = {**twin, "IsActive": False}
    single = account(golden(), owners={"lena.fischer@shop.example": [LENA, retired]})
    assert (single.quarantine, single.payload["OwnerId"]) == (None, LENA["Id"])


def test_an_unknown_segment_is_flagged_and_left_out():
    mapped = account(golden(segment="platinum"))
    assert "Customer_Segment__c" not in mapped.payload
    assert "picklist_unknown:Customer_Segment__c=platinum" in mapped.flags
    assert ("picklist:Customer_Segment__c", "unknown") in mapped.lookups
    assert mapped.quarantine is None
    # Known to our table but not active in the CRM's describe: the CRM would refuse it, so it is unknown too.
    inactive = account(golden(segment="vip"), picklists={"Customer_Segment__c": {"Retail"}})
    assert "picklist_unknown:Customer_Segment__c=vip" in inactive.flags


def test_an_account_the_crm_would_refuse_is_held_back_with_the_reason():
    assert account(golden(last_name=None)).quarantine == "last_name_missing"
    assert account(golden(postal_code=None)).quarantine == "postal_code_missing"
    assert account(golden(postal_code=None, country="DE")).quarantine is None
    assert account(golden(is_company=True, company=None)).quarantine == "company_name_missing"


def test_the_crm_mapping_file_is_strict(tmp_path):
    assert load_crm_mapping().picklists[0].values["vip"] == "VIP"
    bad = tmp_path / "crm_mapping.yaml"
    bad.write_text(
        "version: 1\npicklists:\n  Customer_Segment__c:\n    from: tier\n    values: {vip: VIP}\n"
    )
    with pytest.raises(
        CrmMappingError, match=r"picklists\.Customer_Segment__c\.from: not a golden-record column"
    ):
        load_crm_mapping(bad)


# ---- ERP customer and credit limit ---------------------------------------------------------------------


def test_erp_customer_leaves_the_erp_owned_credit_terms_out():
    mapped = erp_customer(golden())
    assert mapped.payload == {
        "name": "Bob Norman",
        "email": "bob.norman@hostmail.com",
        "is_company": False,
        "phone": "+1 502 555 0100",
        "billing_address": {
            "line1": "Chestnut Street 92",
            "line2": "Apt 4",
            "city": "Louisville",
            "region": "KY",
            "postal_code": "40202",
            "country": "US",
        },
    }
    assert mapped.quarantine is None
    company = erp_customer(golden(is_company=True, company="Norman Audio GmbH"))
    assert (company.payload["name"], company.payload["is_company"]) == ("Norman Audio GmbH", True)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"postal_code": None}, "postal_code_missing"),
        ({"country": None}, "address_country_missing"),
        ({"email": None}, "email_missing"),
        ({"email": "bob at hostmail"}, "email_invalid"),
        ({"is_company": True, "company": "X" * 81}, "name_too_long"),
    ],
)
def test_erp_customer_the_erp_would_refuse_is_held_back_with_the_reason(changes, reason):
    assert erp_customer(golden(**changes)).quarantine == reason


def test_a_credit_limit_change_always_waits_for_approval():
    request = {
        "customer_id": "207119551",
        "credit_limit_minor": 500000,
        "currency": "USD",
        "requested_by": "lena",
    }
    mapped = erp_credit_limit(request, previous_minor=250000)
    assert mapped.payload == {"credit_limit": "5000.00", "currency": "USD"}
    assert mapped.approval_rule == "credit_limit_change"
    assert mapped.details == {
        "currency": "USD",
        "requested": "5000.00",
        "previous": "2500.00",
        "requested_by": "lena",
    }
    assert mapped.depends_on == (("erp", "customer", "207119551"),)
    first = erp_credit_limit(request, previous_minor=None)
    assert first.approval_rule == "credit_limit_change"
    assert erp_credit_limit(request, previous_minor=500000) is None  # nothing changes


# ---- ERP sales orders, invoices, credit notes, payments ----------------------------------------------------


def test_sales_order_of_a_sandbox_order_resolves_its_customer():
    order = sandbox_order(HAPPY, 2)
    mapped = erp_sales_order(order, KNOWN)
    assert mapped.external_id == str(HAPPY)
    assert mapped.quarantine is None
    assert mapped.lookups == (("order_account", "found"),)
    assert mapped.depends_on == (("erp", "customer", "207119551"),)
    payload = mapped.payload
    assert set(payload) == {
        "customer_eid", "order_number", "order_date", "currency", "status", "lines",
        "shipping", "tax_total", "discount_total", "total",
    }  # fmt: skip
    assert payload["status"] == "open"
    assert payload["lines"] == [
        {"sku": "IPOD2008GREEN", "quantity": 1, "unit_price": "199.00", "tax": "15.92"},
        {"sku": "CASE-SLIM", "quantity": 2, "unit_price": "19.90", "tax": "3.18"},
    ]
    assert (payload["shipping"], payload["tax_total"], payload["total"]) == (
        "5.00",
        "19.10",
        "262.90",
    )
    assert payload["order_date"] == "2026-11-20"


def test_sales_order_for_an_unknown_customer_is_quarantined_and_the_lookup_counted_missing():
    mapped = erp_sales_order(sandbox_order(HAPPY, 2), {"300000002"})
    assert mapped.quarantine == "unknown_customer"
    assert mapped.lookups == (("order_account", "missing"),)
    guest = sandbox_order(HAPPY, 2)
    guest["customer"] = None
    assert erp_sales_order(guest, KNOWN).quarantine == "no_customer"


def test_sales_order_status_follows_cancel_and_close():
    assert erp_sales_order(sandbox_order(CANCELLED, 3), KNOWN).payload["status"] == "cancelled"
    assert erp_sales_order(sandbox_order(REFUNDED, 11), KNOWN).payload["status"] == "closed"


def test_an_edited_order_is_booked_as_edited():
    before = erp_sales_order(sandbox_order(EDITED, 1), KNOWN).payload["lines"]
    after = erp_sales_order(sandbox_order(EDITED, 5), KNOWN).payload["lines"]
    assert [(line["sku"], line["quantity"]) for line in before] == [
        ("IPOD2008RED", 2),
        ("CASE-SLIM", 1),
    ]
    # RED 2 -> 1, CASE-SLIM removed, GREEN added.
    assert [(line["sku"], line["quantity"]) for line in after] == [
        ("IPOD2008RED", 1),
        ("IPOD2008GREEN", 1),
    ]


def test_a_refund_changes_neither_the_sales_order_nor_the_invoice():
    paid, refunded = sandbox_order(REFUNDED, 7), sandbox_order(REFUNDED, 9)
    assert refunded["financial_status"] == "partially_refunded"
    for transform in (lambda o: erp_sales_order(o, KNOWN), erp_invoice):
        before, after = transform(paid).payload, transform(refunded).payload
        assert {k: v for k, v in before.items() if k != "status"} == {
            k: v for k, v in after.items() if k != "status"
        }


def test_invoice_only_once_money_is_taken():
    assert erp_invoice(real_order()) is None  # authorized, not paid
    assert erp_invoice(sandbox_order(HAPPY, 0.5)) is None  # pending
    mapped = erp_invoice(sandbox_order(HAPPY, 2))
    assert mapped.external_id == f"INV-{HAPPY}"
    assert mapped.payload == {
        "sales_order_eid": str(HAPPY),
        "customer_eid": "207119551",
        "invoice_date": "2026-11-20",
        "currency": "USD",
        "amount": "262.90",
    }
    assert mapped.depends_on == (
        ("erp", "sales_order", str(HAPPY)),
        ("erp", "customer", "207119551"),
    )


def test_credit_note_of_a_real_refund_above_and_below_the_threshold():
    order = real_order()
    (refund,) = order["refunds"]  # 209.00 USD back
    above = erp_credit_note(refund, order, approval_threshold_minor=20000)
    assert above.external_id == "CN-509562969"
    assert above.payload == {
        "invoice_eid": "INV-450789469",
        "customer_eid": "207119551",
        "credit_date": "2015-09-02",
        "currency": "USD",
        "amount": "209.00",
        "reason": "it broke during shipping",
    }
    assert above.approval_rule == "credit_note_over_threshold"
    assert above.details == {"amount": "209.00", "threshold": "200.00"}
    below = erp_credit_note(refund, order, approval_threshold_minor=20900)
    assert below.approval_rule is None  # at the threshold is not above it
    assert below.payload == above.payload


def test_a_refund_that_moved_no_money_needs_no_credit_note():
    order = real_order()
    refund = order["refunds"][0]
    refund["transactions"][0]["status"] = "failure"
    assert erp_credit_note(refund, order, approval_threshold_minor=0) is None


def test_payment_applied_to_the_invoice():
    order = sandbox_order(HAPPY, 2)
    charge = {"id": "ch_3Q", "amount_minor": 26290, "currency": "usd", "created": datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
              "payment_method": "card"}  # fmt: skip
    mapped = erp_payment_applied(order, charge)
    assert mapped.external_id == "ch_3Q"
    assert mapped.payload == {
        "invoice_eid": f"INV-{HAPPY}",
        "paid_at": "2026-11-20T15:00:00Z",
        "currency": "USD",
        "amount": "262.90",
        "reference": "ch_3Q",
        "method": "card",
    }
    assert mapped.depends_on == (("erp", "invoice", f"INV-{HAPPY}"),)
    assert (
        erp_payment_applied(order, {**charge, "currency": "eur"}).quarantine == "currency_mismatch"
    )
    assert erp_payment_applied(sandbox_order(HAPPY, 0.5), charge).quarantine == "order_not_invoiced"


def test_unreadable_input_is_quarantined_not_raised():
    order = sandbox_order(HAPPY, 2)
    order["line_items"][0]["price"] = "199,00"
    mapped = erp_sales_order(order, KNOWN)
    assert mapped.payload is None
    assert mapped.quarantine.startswith("invalid_input: line_items[0].price")
    assert mapped.external_id == str(HAPPY)


# ---- WMS reservations ------------------------------------------------------------------------------------


def test_reservation_follows_payment_shipment_and_cancellation():
    assert wms_reservation(sandbox_order(HAPPY, 0.5)) is None  # not paid: nothing to hold
    paid = wms_reservation(sandbox_order(HAPPY, 2))
    assert paid.external_id == f"RES-{HAPPY}"
    assert paid.payload == {
        "order_id": str(HAPPY),
        "status": "reserved",
        "lines": [{"sku": "CASE-SLIM", "quantity": 2}, {"sku": "IPOD2008GREEN", "quantity": 1}],
    }
    partly_shipped = wms_reservation(sandbox_order(REFUNDED, 7))
    assert partly_shipped.payload["lines"] == [{"sku": "IPOD2008GREEN", "quantity": 1}]
    cancelled = wms_reservation(sandbox_order(CANCELLED, 3))
    assert cancelled.payload == {"order_id": str(CANCELLED), "status": "released", "lines": []}


def test_reservation_of_an_edited_order_holds_the_new_quantities():
    before = wms_reservation(sandbox_order(EDITED, 1)).payload["lines"]
    after = wms_reservation(sandbox_order(EDITED, 5)).payload["lines"]
    assert before == [{"sku": "CASE-SLIM", "quantity": 1}, {"sku": "IPOD2008RED", "quantity": 2}]
    assert after == [
        {"sku": "CASE-SLIM", "quantity": 0},  # removed by the edit: released explicitly
        {"sku": "IPOD2008GREEN", "quantity": 1},
        {"sku": "IPOD2008RED", "quantity": 1},
    ]


def test_unfulfilled_units_without_fulfillable_quantity_count_successful_shipments_only():
    order = load_fixture_order("shopify_python_api/order.json")  # no fulfillable_quantity
    # Its one fulfillment (of the green line) failed: nothing has shipped.
    assert [f["status"] for f in order["fulfillments"]] == ["failure"]
    assert unfulfilled_by_sku(order) == {"IPOD2008BLACK": 1, "IPOD2008GREEN": 1, "IPOD2008RED": 1}
    order["fulfillments"][0]["status"] = "success"
    assert unfulfilled_by_sku(order) == {"IPOD2008BLACK": 1, "IPOD2008GREEN": 0, "IPOD2008RED": 1}


# ---- lookup tally -----------------------------------------------------------------------------------------


def test_every_lookup_outcome_is_counted():
    results = [
        account(golden()),
        account(golden(account_manager_email="gone@shop.example", segment="platinum")),
        erp_sales_order(sandbox_order(HAPPY, 2), {"300000002"}),
        erp_sales_order(sandbox_order(EDITED, 2), KNOWN),
        crm_contact(golden(), {}, DEFAULT_OWNER),  # None: a person needs no contact
    ]
    assert aggregate_lookups(results) == {
        "crm_owner_by_email": {"found": 1, "missing": 1},
        "order_account": {"found": 1, "missing": 1},
        "picklist:Customer_Segment__c": {"mapped": 1, "unknown": 1},
    }
    assert failed_lookups(results) == 3
