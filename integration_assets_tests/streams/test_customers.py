"""The customer golden record: each attribute from its system of record (or the first fallback with a
value), addresses never mixed, every resolved conflict recorded, the same output for any input order."""

import copy
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.contracts.ownership import OWNERSHIP_FILE, load_ownership
from integration_assets.streams.customers import (
    GOLDEN_COLUMNS,
    LINEAGE_COLUMNS,
    Address,
    CrmAccount,
    CustomerMergeError,
    CustomerRecordError,
    ErpCustomer,
    StorefrontCustomer,
    crm_account_from_row,
    erp_customer_from_row,
    latest_storefront_customers,
    merge_customers,
    read_rows,
    storefront_customer,
    storefront_customer_from_json,
    storefront_customer_json,
)
from integration_assets_tests.conftest import load_fixture_order

REGISTRY = load_ownership()
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BOB = "207119551"


def real_order() -> dict:
    return load_fixture_order("monei_shopify_api_node/order/res/get.json")


def crm_row(**changes) -> dict:
    row = {
        "attributes": {"type": "Account", "url": "/services/data/v60.0/sobjects/Account/001A"},
        "Id": "001A0000001",
        "External_Id__c": BOB,
        "Name": "Bob Norman",
        "BillingStreet": "Chestnut Street 92\nApt 4",
        "BillingCity": "Louisville",
        "BillingState": "KY",
        "BillingPostalCode": None,
        "BillingCountry": "US",
        "Phone": None,
        "Industry": None,
        "Customer_Segment__c": "Wholesale",
        "OwnerId": "005A0000009",
        "Owner": {"attributes": {"type": "User"}, "Email": "Lena.Fischer@shop.example"},
        "LastModifiedDate": "2026-11-19T08:00:00.000+0000",
    }
    row.update(changes)
    return row


def erp_row(**record_changes) -> dict:
    record = {
        "name": "Bob Norman",
        "email": "bob.n@hostmail.example",
        "phone": "+1 502 555 0100",
        "is_company": False,
        "billing_address": {"line1": "PO Box 7", "city": "Louisville", "country": "US"},
        "credit_limit": "2500.00",
        "currency": "USD",
        "payment_terms": "NET30",
    }
    record.update(record_changes)
    return {
        "id": "erp-81",
        "external_id": BOB,
        "type": "customer",
        "version": 3,
        "record": record,
        "updated_at": "2026-11-18T12:00:00Z",
    }


def merged(storefront=(), crm=(), erp=()):
    return merge_customers(list(storefront), list(crm), list(erp), REGISTRY)


def only(rows):
    assert len(rows) == 1
    return rows[0]


def conflict_of(merge, attribute):
    return [c for c in merge.conflicts if c["attribute"] == attribute]


# ---- the registry and the golden record agree ------------------------------------------------------


def test_every_golden_column_is_a_registry_attribute_of_customer():
    for column in GOLDEN_COLUMNS:
        if column in LINEAGE_COLUMNS:
            continue
        attribute = REGISTRY.attribute_of_column("customer", column)
        assert attribute.system in REGISTRY.systems and attribute.owner.email, column
    assert set(REGISTRY.columns("customer")) == set(GOLDEN_COLUMNS) - set(LINEAGE_COLUMNS)
    golden = only(merged([storefront_customer(real_order(), T0, "raw#1")]).golden)
    assert tuple(golden) == GOLDEN_COLUMNS


def test_a_registry_that_lost_an_attribute_stops_the_merge(tmp_path):
    raw = yaml.safe_load(OWNERSHIP_FILE.read_text())
    del raw["entities"]["customer"]["attributes"]["payment_terms"]
    path = tmp_path / "ownership.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(CustomerMergeError, match=r"missing from the registry: \['payment_terms'\]"):
        merge_customers([], [], [], load_ownership(path))


# ---- reading the sources -----------------------------------------------------------------------------


def test_storefront_customer_from_a_real_order():
    customer = storefront_customer(real_order(), T0, "raw/storefront/orders/b1#0")
    assert customer.customer_id == BOB
    assert customer.email == "bob.norman@hostmail.com"
    assert (customer.first_name, customer.last_name) == ("Bob", "Norman")
    # The order's billing address, not the customer's default address: it is what the customer gave last.
    assert customer.address == Address(
        "123 Amoebobacterieae St", None, "Ottawa", "ON", "K2P0V6", "CA"
    )
    assert customer.phone == "(555)555-5555"
    assert customer.company is None  # "" in the payload is no company


def test_a_storefront_customer_kept_as_json_reads_back_the_same():
    order = real_order()
    order["customer"]["tags"] = "segment:Wholesale, vip"
    customer = storefront_customer(order, T0, "raw/storefront/orders/b1#0")
    assert storefront_customer_from_json(storefront_customer_json(customer)) == customer
    without_address = StorefrontCustomer(**{**customer.__dict__, "address": None, "tags": ()})
    assert storefront_customer_from_json(storefront_customer_json(without_address)) == (
        without_address
    )


def test_storefront_tags_give_segment_and_account_manager():
    order = real_order()
    order["customer"]["tags"] = "segment:Wholesale, account-manager:Lena.Fischer@shop.example, vip"
    customer = storefront_customer(order, T0, "raw#1")
    assert customer.segment == "wholesale"
    assert customer.account_manager_email == "lena.fischer@shop.example"
    assert customer.tags == (
        "segment:Wholesale",
        "account-manager:Lena.Fischer@shop.example",
        "vip",
    )


def test_a_guest_order_has_no_customer_and_a_naive_time_is_refused():
    order = real_order()
    order["customer"] = None
    assert storefront_customer(order, T0, "raw#1") is None
    with pytest.raises(CustomerRecordError, match="observed_at has no timezone"):
        storefront_customer(real_order(), T0.replace(tzinfo=None), "raw#1")
    broken = real_order()
    broken["billing_address"] = "Chestnut Street"
    with pytest.raises(CustomerRecordError, match="billing_address: expected an object"):
        storefront_customer(broken, T0, "raw#1")


def test_the_newest_order_snapshot_of_a_customer_wins_in_any_order():
    old, new = real_order(), real_order()
    new["billing_address"]["city"] = "Toronto"
    snapshots = [(new, T0 + timedelta(hours=1), "raw#2"), (old, T0, "raw#1")]
    for ordering in (snapshots, snapshots[::-1]):
        (customer,) = latest_storefront_customers(ordering)
        assert customer.address.city == "Toronto"
        assert customer.source_ref == "raw#2"


def test_crm_rows_are_read_and_unreadable_ones_rejected_with_a_reason():
    account = crm_account_from_row(crm_row())
    assert account.address == Address("Chestnut Street 92", "Apt 4", "Louisville", "KY", None, "US")
    assert account.owner_email == "lena.fischer@shop.example"
    assert account.segment == "wholesale"
    assert account.last_modified == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    flat = crm_row(Owner=None, **{"Owner.Email": "max@shop.example"})
    assert crm_account_from_row(flat).owner_email == "max@shop.example"
    rows = [
        crm_row(),
        crm_row(External_Id__c=None, Id="001UNLINKED"),
        crm_row(LastModifiedDate="yesterday"),
    ]
    accounts, rejected = read_rows(rows, crm_account_from_row)
    assert [a.customer_id for a in accounts] == [BOB]
    assert [index for index, _ in rejected] == [1, 2]
    assert "'001UNLINKED': no External_Id__c" in rejected[0][1]
    assert "LastModifiedDate" in rejected[1][1]


def test_erp_rows_put_credit_limits_into_minor_units_and_refuse_what_they_cannot_read():
    customer = erp_customer_from_row(erp_row())
    assert (customer.credit_limit_minor, customer.currency) == (250000, "USD")
    assert customer.payment_terms == "NET30"
    assert erp_customer_from_row(erp_row(currency="usd")).currency == "USD"
    without_currency = erp_row(currency=None, credit_limit="1000")
    with pytest.raises(CustomerRecordError, match="credit_limit has no valid currency"):
        erp_customer_from_row(without_currency)
    assert (
        erp_customer_from_row(without_currency, default_currency="EUR").credit_limit_minor == 100000
    )
    with pytest.raises(CustomerRecordError, match="'NET90' is not one of"):
        erp_customer_from_row(erp_row(payment_terms="NET90"))
    with pytest.raises(CustomerRecordError, match="credit_limit: "):
        erp_customer_from_row(erp_row(credit_limit="1.000,00"))


# ---- precedence ------------------------------------------------------------------------------------------


def test_crm_address_wins_whole_over_the_storefronts_and_the_conflict_is_recorded():
    storefront = storefront_customer(real_order(), T0, "raw#1")
    merge = merged([storefront], [crm_account_from_row(crm_row())])
    golden = only(merge.golden)
    # All parts from the CRM; its missing postal code is not patched with the storefront's K2P0V6.
    assert [
        golden[c]
        for c in ("address_line1", "address_line2", "city", "region", "postal_code", "country")
    ] == [
        "Chestnut Street 92",
        "Apt 4",
        "Louisville",
        "KY",
        None,
        "US",
    ]
    conflict = only(conflict_of(merge, "address"))
    assert conflict["chosen_system"] == "crm"
    assert conflict["overridden_system"] == "storefront"
    assert conflict["rule"] == "system_of_record"
    assert json.loads(conflict["overridden_value"])["city"] == "Ottawa"
    assert json.loads(conflict["chosen_value"])["city"] == "Louisville"
    assert json.loads(golden["attribute_sources"])["address"] == "crm"


def test_storefront_email_wins_over_the_erps():
    merge = merged(
        [storefront_customer(real_order(), T0, "raw#1")], erp=[erp_customer_from_row(erp_row())]
    )
    assert only(merge.golden)["email"] == "bob.norman@hostmail.com"
    conflict = only(conflict_of(merge, "email"))
    assert (conflict["chosen_system"], conflict["overridden_system"]) == ("storefront", "erp")
    assert conflict["overridden_value"] == "bob.n@hostmail.example"


def test_erp_credit_terms_win_and_the_erp_email_is_the_fallback():
    order = real_order()
    order["customer"]["email"] = None
    order["email"] = None
    merge = merged(
        [storefront_customer(order, T0, "raw#1")], erp=[erp_customer_from_row(erp_row())]
    )
    golden = only(merge.golden)
    assert (golden["credit_limit_minor"], golden["currency"], golden["payment_terms"]) == (
        250000,
        "USD",
        "NET30",
    )
    assert golden["email"] == "bob.n@hostmail.example"
    sources = json.loads(golden["attribute_sources"])
    assert sources["credit_limit"] == sources["payment_terms"] == sources["email"] == "erp"
    assert golden["sources"] == ["storefront", "erp"]


def test_fallback_when_the_system_of_record_has_no_value_and_its_conflicts_say_so():
    # Phone: the CRM owns it but has none, the storefront is the first fallback, the ERP differs.
    merge = merged(
        [storefront_customer(real_order(), T0, "raw#1")],
        [crm_account_from_row(crm_row(Phone=None))],
        [erp_customer_from_row(erp_row())],
    )
    assert only(merge.golden)["phone"] == "(555)555-5555"
    conflict = only(conflict_of(merge, "phone"))
    assert conflict == {
        "customer_id": BOB,
        "attribute": "phone",
        "chosen_system": "storefront",
        "chosen_value": "(555)555-5555",
        "overridden_system": "erp",
        "overridden_value": "+1 502 555 0100",
        "rule": "fallback",
    }


def test_the_crm_wins_segment_and_account_manager_but_the_tags_fill_in_for_new_customers():
    order = real_order()
    order["customer"]["tags"] = "segment:vip, account-manager:max@shop.example"
    storefront = storefront_customer(order, T0, "raw#1")
    with_crm = only(merged([storefront], [crm_account_from_row(crm_row())]).golden)
    assert (with_crm["segment"], with_crm["account_manager_email"]) == (
        "wholesale",
        "lena.fischer@shop.example",
    )
    new_customer = only(merged([storefront]).golden)
    assert (new_customer["segment"], new_customer["account_manager_email"]) == (
        "vip",
        "max@shop.example",
    )


def test_case_and_spacing_are_not_conflicts_and_agreement_records_nothing():
    order = real_order()
    order["billing_address"].update(
        address1="chestnut street 92",
        address2="APT 4",
        city="louisville",
        province_code="KY",
        zip=None,
        country_code="US",
    )
    merge = merged([storefront_customer(order, T0, "raw#1")], [crm_account_from_row(crm_row())])
    assert conflict_of(merge, "address") == []


def test_a_company_comes_from_the_storefront_billing_company_or_else_the_erp():
    order = real_order()
    order["billing_address"]["company"] = "Norman Audio GmbH"
    golden = only(merged([storefront_customer(order, T0, "raw#1")]).golden)
    assert (golden["company"], golden["is_company"]) == ("Norman Audio GmbH", True)
    erp_company = erp_customer_from_row(erp_row(is_company=True, name="Norman Holdings"))
    golden = only(
        merged([storefront_customer(real_order(), T0, "raw#1")], erp=[erp_company]).golden
    )
    assert (golden["company"], golden["is_company"]) == ("Norman Holdings", True)
    person = only(merged([storefront_customer(real_order(), T0, "raw#1")]).golden)
    assert (person["company"], person["is_company"]) == (None, False)


def test_customers_known_to_one_system_only_get_a_row_and_duplicates_are_superseded():
    older = crm_account_from_row(
        crm_row(
            External_Id__c="555", BillingCity="Old Town", LastModifiedDate="2026-01-01T00:00:00Z"
        )
    )
    newer = crm_account_from_row(crm_row(External_Id__c="555", BillingCity="New Town"))
    merge = merged(crm=[newer, older])
    golden = only(merge.golden)
    assert golden["customer_id"] == "555"
    assert golden["sources"] == ["crm"]
    assert golden["city"] == "New Town"
    assert merge.superseded == {"storefront": 0, "crm": 1, "erp": 0}


# ---- order independence ------------------------------------------------------------------------------------

IDS = st.sampled_from(["1", "2", "3"])
TEXT = st.sampled_from([None, "a", "A", "b", "c d"])
TIMES = st.sampled_from([None, T0, T0 + timedelta(hours=1)])
ADDRESSES = st.one_of(
    st.none(), st.builds(Address, TEXT, TEXT, TEXT, TEXT, TEXT, st.sampled_from([None, "US", "DE"]))
)
EMAILS = st.sampled_from([None, "x@example.com", "y@example.com"])

STOREFRONT = st.builds(
    StorefrontCustomer,
    customer_id=IDS,
    email=EMAILS,
    first_name=TEXT,
    last_name=TEXT,
    phone=TEXT,
    company=TEXT,
    address=ADDRESSES,
    segment=st.sampled_from([None, "vip", "retail"]),
    account_manager_email=EMAILS,
    tags=st.just(()),
    observed_at=st.sampled_from([T0, T0 + timedelta(hours=1)]),
    source_ref=st.sampled_from(["raw#1", "raw#2"]),
)
CRM = st.builds(
    CrmAccount,
    customer_id=IDS,
    account_id=st.sampled_from(["001A", "001B"]),
    name=TEXT,
    phone=TEXT,
    address=ADDRESSES,
    industry=st.none(),
    segment=st.sampled_from([None, "vip", "wholesale"]),
    owner_id=st.none(),
    owner_email=EMAILS,
    last_modified=TIMES,
)
ERP = st.builds(
    ErpCustomer,
    customer_id=IDS,
    erp_id=st.sampled_from(["e1", "e2"]),
    name=TEXT,
    email=EMAILS,
    phone=TEXT,
    is_company=st.booleans(),
    address=ADDRESSES,
    credit_limit_minor=st.sampled_from([None, 0, 100000]),
    currency=st.just("USD"),
    payment_terms=st.sampled_from([None, "NET30", "PREPAID"]),
    updated_at=TIMES,
)


@settings(max_examples=150, deadline=None)
@given(
    storefront=st.lists(STOREFRONT, max_size=6),
    crm=st.lists(CRM, max_size=6),
    erp=st.lists(ERP, max_size=6),
    data=st.data(),
)
def test_the_merge_does_not_depend_on_input_order(storefront, crm, erp, data):
    expected = merge_customers(storefront, crm, erp, REGISTRY)
    shuffled = merge_customers(
        data.draw(st.permutations(storefront)),
        data.draw(st.permutations(crm)),
        data.draw(st.permutations(erp)),
        REGISTRY,
    )
    assert orjson.dumps(shuffled.golden) == orjson.dumps(expected.golden)
    assert shuffled.conflicts == expected.conflicts
    # And it is a function of its inputs: nothing is mutated or remembered between calls.
    again = merge_customers(copy.deepcopy(storefront), crm, erp, REGISTRY)
    assert again == expected
    ids = {r.customer_id for r in [*storefront, *crm, *erp]}
    assert [row["customer_id"] for row in expected.golden] == sorted(ids)
