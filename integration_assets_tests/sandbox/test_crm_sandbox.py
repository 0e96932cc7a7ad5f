"""The CRM sandbox over real HTTP on 127.0.0.1: Salesforce's OAuth, upsert, describe, query and faults."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.crm_app import parse_crm, start_crm
from integration_assets.sandbox.crm_schema import ACCOUNT_RECORD_TYPES
from integration_assets.sandbox.crm_soql import ACCOUNT_QUERY_FIELDS
from integration_assets.sandbox.scenario import ScenarioError, _Reader

START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
SECRET = "crm-test-secret-0f9e8d"
DATA = "/services/data/v60.0"
ALICE = "005Sb0000000011AAA"
BOB = "005Sb0000000012AAA"
GONE = "005Sb0000000013AAA"
CRM_YAML = {
    "client_id": "crm-test-client",
    "client_secret": SECRET,
    "users": [
        {"id": ALICE, "name": "Alice Owner", "email": "alice@example.com"},
        {"id": BOB, "name": "Bob Owner", "email": "o'brien@example.com"},
        {"id": GONE, "name": "Gone Owner", "email": "gone@example.com", "active": False},
    ],
    "picklists": {"Industry": ["Retail", "Technology"]},
    "accounts": [
        {
            "external_id": "cust-1",
            "Name": "Acme Ltd",
            "BillingCountry": "GB",
            "Industry": "Retail",
            "Customer_Segment__c": "Wholesale",
            "owner": BOB,
            "last_modified": "2026-11-19T10:00:00Z",
        },
        {"external_id": "cust-2", "LastName": "Lovelace", "FirstName": "Ada"},
    ],
}
ACCOUNT_QUERY = f"SELECT {', '.join(ACCOUNT_QUERY_FIELDS)} FROM Account WHERE LastModifiedDate > "


def crm_config(**overrides):
    return parse_crm(_Reader(Path("scenario.yaml")), {**CRM_YAML, **overrides})


@pytest.fixture
def clock():
    return ScenarioClock(START)


@pytest.fixture
def crm(clock):
    with start_crm(crm_config(), clock=clock) as running:
        yield running


def token(crm, secret=SECRET):
    return requests.post(
        f"{crm.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "crm-test-client",
            "client_secret": secret,
        },
        timeout=10,
    )


@pytest.fixture
def api(crm):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token(crm).json()['access_token']}"
    yield session
    session.close()


def upsert(api, crm, sobject, external_id, fields):
    return api.patch(
        f"{crm.url}{DATA}/sobjects/{sobject}/External_Id__c/{external_id}", json=fields, timeout=10
    )


def query(api, crm, soql, **headers):
    return api.get(f"{crm.url}{DATA}/query", params={"q": soql}, headers=headers, timeout=10)


# ---- OAuth ------------------------------------------------------------------------------------
def test_token_answer_has_salesforce_shape_and_no_expiry(crm):
    answer = token(crm)
    assert answer.status_code == 200
    body = answer.json()
    assert body["instance_url"] == crm.url
    assert body["token_type"] == "Bearer"
    assert "expires_in" not in body
    assert body["id"].startswith(f"{crm.url}/id/00D") and body["id"].endswith(ALICE)
    assert body["issued_at"] == str(int(START.timestamp() * 1000))


def test_wrong_secret_is_invalid_client_and_echoes_no_secret(crm):
    refused = token(crm, secret="not-it")
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }
    assert "not-it" not in refused.text


def test_calls_without_a_live_session_are_invalid_session_id(crm):
    for headers in ({}, {"Authorization": "Bearer forged"}):
        answer = requests.get(
            f"{crm.url}{DATA}/sobjects/Account/describe", headers=headers, timeout=10
        )
        assert answer.status_code == 401
        assert answer.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_sessions_expire_after_their_ttl_on_the_scenario_clock(clock):
    with start_crm(crm_config(session_ttl_seconds=3600), clock=clock) as crm:
        headers = {"Authorization": f"Bearer {token(crm).json()['access_token']}"}
        url = f"{crm.url}{DATA}/sobjects/Account/describe"
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        clock.advance(timedelta(seconds=3599))
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        clock.advance(timedelta(seconds=1))
        assert requests.get(url, headers=headers, timeout=10).status_code == 401
        fresh = {"Authorization": f"Bearer {token(crm).json()['access_token']}"}
        assert requests.get(url, headers=fresh, timeout=10).status_code == 200


def test_expire_sessions_fault_kills_sessions_before_request_n_plus_one(clock):
    faults = [{"kind": "expire_sessions", "after_requests": 2}]
    with start_crm(crm_config(faults=faults), clock=clock) as crm:
        headers = {"Authorization": f"Bearer {token(crm).json()['access_token']}"}
        url = f"{crm.url}{DATA}/sobjects/Contact/describe"
        statuses = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(3)]
        assert statuses == [200, 200, 401]
        fresh = {"Authorization": f"Bearer {token(crm).json()['access_token']}"}
        assert [requests.get(url, headers=fresh, timeout=10).status_code for _ in range(2)] == [
            200,
            200,
        ]
        assert crm.stats()["faults_fired"] == {"expire_sessions": 1}
        assert crm.stats()["sessions_issued"] == 2


def test_other_api_versions_are_not_found(crm, api):
    answer = api.get(f"{crm.url}/services/data/v59.0/sobjects/Account/describe", timeout=10)
    assert answer.status_code == 404
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"


# ---- upsert -----------------------------------------------------------------------------------
def test_upsert_creates_then_updates_and_an_identical_upsert_is_no_second_document(crm, api, clock):
    fields = {"Name": "Globex", "BillingCountry": "DE", "Customer_Segment__c": "VIP"}
    created = upsert(api, crm, "Account", "cust-9", fields)
    assert created.status_code == 201
    assert created.json()["created"] is True and created.json()["success"] is True
    assert created.json()["id"].startswith("001") and len(created.json()["id"]) == 18

    again = upsert(api, crm, "Account", "cust-9", fields)
    assert again.status_code == 200
    assert again.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }

    clock.advance(timedelta(minutes=5))
    changed = upsert(api, crm, "Account", "cust-9", {"Phone": "+49 30 1234"})
    assert changed.status_code == 200

    stats = crm.stats()
    assert stats["documents"]["Account"] == 3  # two seeds + this one
    assert stats["writes"]["Account"] == {"created": 1, "updated": 1, "unchanged": 1, "rejected": 0}
    stored = next(r for r in crm.records("Account") if r["External_Id__c"] == "cust-9")
    # A PATCH is partial: the earlier fields stay.
    assert stored["Name"] == "Globex" and stored["Phone"] == "+49 30 1234"
    assert stored["OwnerId"] == ALICE  # the API user owns what it creates
    assert stored["RecordTypeId"] == ACCOUNT_RECORD_TYPES["Business Account"]
    assert stored["LastModifiedDate"] == "2026-11-20T14:05:00.000+0000"
    assert stored["CreatedDate"] == "2026-11-20T14:00:00.000+0000"


def test_person_account_needs_last_name_and_takes_its_name_from_it(crm, api):
    person = ACCOUNT_RECORD_TYPES["Person Account"]
    refused = upsert(api, crm, "Account", "p-1", {"RecordTypeId": person, "FirstName": "Grace"})
    assert refused.status_code == 400
    assert refused.json() == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]
    made = upsert(
        api,
        crm,
        "Account",
        "p-1",
        {
            "RecordTypeId": person,
            "FirstName": "Grace",
            "LastName": "Hopper",
            "PersonEmail": "grace@example.com",
        },
    )
    assert made.status_code == 201
    stored = next(r for r in crm.records("Account") if r["External_Id__c"] == "p-1")
    assert stored["Name"] == "Grace Hopper" and stored["IsPersonAccount"] is True


@pytest.mark.parametrize(
    ("fields", "code", "error_fields"),
    [
        (
            {"Name": "X", "Industry": "Mining"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Industry"],
        ),
        (
            {"Name": "X", "Customer_Segment__c": "Gold"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Customer_Segment__c"],
        ),
        ({"Phone": "1"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        ({"Name": "X", "OwnerId": GONE}, "INACTIVE_OWNER_OR_USER", []),
        (
            {"Name": "X", "OwnerId": "005Sb0000000099AAA"},
            "INVALID_CROSS_REFERENCE_KEY",
            ["OwnerId"],
        ),
        (
            {"Name": "X", "BillingCountry": "US"},
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            ["BillingPostalCode"],
        ),
        ({"Name": "X", "PersonEmail": "a@b.com"}, "INVALID_FIELD", ["PersonEmail"]),
        ({"Name": "X", "Colour__c": "red"}, "INVALID_FIELD", []),
        (
            {"Name": "X", "LastModifiedDate": "2020-01-01"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["LastModifiedDate"],
        ),
        ({"Name": "X" * 256}, "STRING_TOO_LONG", ["Name"]),
        ({"Name": 5}, "JSON_PARSER_ERROR", []),
    ],
)
def test_account_validation_refuses_with_salesforce_errors_and_writes_nothing(
    crm, api, fields, code, error_fields
):
    refused = upsert(api, crm, "Account", "bad-1", fields)
    assert refused.status_code == 400
    errors = refused.json()
    assert [(e["errorCode"], e["fields"]) for e in errors] == [(code, error_fields)]
    assert all(e["message"] for e in errors)
    assert "bad-1" not in {r["External_Id__c"] for r in crm.records("Account")}
    assert crm.stats()["writes"]["Account"]["rejected"] == 1


def test_picklist_violation_message_names_the_bad_value(crm, api):
    refused = upsert(api, crm, "Account", "cust-1", {"Industry": "Mining"})
    assert refused.json()[0]["message"] == "bad value for restricted picklist field: Mining"
    # The refused update left the stored account as it was.
    stored = next(r for r in crm.records("Account") if r["External_Id__c"] == "cust-1")
    assert stored["Industry"] == "Retail"


def test_contact_links_to_its_account_by_external_id(crm, api):
    made = upsert(
        api,
        crm,
        "Contact",
        "ct-1",
        {"LastName": "Coyote", "Email": "wile@acme.test", "Account": {"External_Id__c": "cust-1"}},
    )
    assert made.status_code == 201 and made.json()["id"].startswith("003")
    account = next(r for r in crm.records("Account") if r["External_Id__c"] == "cust-1")
    assert crm.records("Contact")[0]["AccountId"] == account["Id"]


def test_contact_with_unknown_account_is_salesforces_foreign_key_error(crm, api):
    refused = upsert(
        api,
        crm,
        "Contact",
        "ct-2",
        {"LastName": "Nobody", "Account": {"External_Id__c": "cust-404"}},
    )
    assert refused.status_code == 400
    assert refused.json() == [
        {
            "message": "Foreign key external ID: cust-404 not found for field External_Id__c in entity Account",
            "errorCode": "INVALID_FIELD",
            "fields": [],
        }
    ]
    assert crm.records("Contact") == []


def test_contact_email_is_checked(crm, api):
    refused = upsert(api, crm, "Contact", "ct-3", {"LastName": "X", "Email": "not an email"})
    assert refused.json()[0]["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert refused.json()[0]["fields"] == ["Email"]


def test_unknown_sobject_is_not_found(crm, api):
    answer = upsert(api, crm, "Opportunity", "o-1", {"Name": "x"})
    assert answer.status_code == 404
    assert answer.json()[0]["errorCode"] == "NOT_FOUND"


# ---- describe ---------------------------------------------------------------------------------
def test_describe_lists_the_configured_picklists_and_both_record_types(crm, api):
    described = api.get(f"{crm.url}{DATA}/sobjects/Account/describe", timeout=10).json()
    fields = {f["name"]: f for f in described["fields"]}
    assert [v["value"] for v in fields["Industry"]["picklistValues"]] == ["Retail", "Technology"]
    assert [v["value"] for v in fields["Customer_Segment__c"]["picklistValues"]] == [
        "Retail",
        "Wholesale",
        "VIP",
        "Marketplace",
    ]
    assert fields["Customer_Segment__c"]["restrictedPicklist"] is True
    assert fields["External_Id__c"]["externalId"] is True
    assert fields["Id"]["updateable"] is False
    assert {
        rt["name"]: rt["recordTypeId"] for rt in described["recordTypeInfos"]
    } == ACCOUNT_RECORD_TYPES
    contact = api.get(f"{crm.url}{DATA}/sobjects/Contact/describe", timeout=10).json()
    assert {f["name"] for f in contact["fields"]} >= {"LastName", "Email", "AccountId", "OwnerId"}


# ---- query ------------------------------------------------------------------------------------
def user_query(email_literal):
    return f"SELECT Id, Name, Email, IsActive FROM User WHERE Email = {email_literal}"


def test_user_by_email_is_case_insensitive_and_reads_escaped_quotes(crm, api):
    found = query(api, crm, user_query("'ALICE@example.com'")).json()
    assert found["totalSize"] == 1 and found["done"] is True
    assert found["records"][0]["Id"] == ALICE
    assert found["records"][0]["attributes"]["type"] == "User"
    escaped = query(api, crm, user_query(r"'o\'brien@example.com'")).json()
    assert [r["Id"] for r in escaped["records"]] == [BOB]


def test_an_unescaped_quote_is_a_malformed_query_not_an_injection(crm, api):
    injected = query(api, crm, user_query("'x' OR Email != ''"))
    assert injected.status_code == 400
    assert injected.json()[0]["errorCode"] == "MALFORMED_QUERY"
    quoted = query(api, crm, user_query(r"'x\' OR Email != \''"))
    assert quoted.status_code == 200 and quoted.json()["records"] == []


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM User WHERE Email = 'a@b.c'",
        "SELECT Id, Name, Email, IsActive FROM User WHERE Name = 'a'",
        "SELECT Id, Name, Email, IsActive FROM Contact WHERE Email = 'a@b.c'",
        ACCOUNT_QUERY + "yesterday",
        "DELETE FROM Account",
    ],
)
def test_other_queries_are_malformed(crm, api, soql):
    answer = query(api, crm, soql)
    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_account_query_returns_changes_after_the_moment_with_owner_email(crm, api):
    rows = query(api, crm, ACCOUNT_QUERY + "2026-11-19T12:00:00Z").json()
    # cust-1 was last modified on the 19th at 10:00, before the moment; cust-2 at the clock's start.
    assert [r["External_Id__c"] for r in rows["records"]] == ["cust-2"]
    older = query(api, crm, ACCOUNT_QUERY + "2026-11-19T09:00:00+00:00").json()
    first = older["records"][0]
    assert first["External_Id__c"] == "cust-1"
    assert set(first) == {"attributes", "Owner", *ACCOUNT_QUERY_FIELDS} - {"Owner.Email"}
    assert first["Owner"]["Email"] == "o'brien@example.com"
    assert first["LastModifiedDate"] == "2026-11-19T10:00:00.000+0000"


def test_account_query_pages_with_next_records_url(clock):
    many = [{"external_id": f"bulk-{i:03d}", "Name": f"Bulk {i}"} for i in range(450)]
    with start_crm(crm_config(accounts=many), clock=clock) as crm:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token(crm).json()['access_token']}"
        session.headers["Sforce-Query-Options"] = "batchSize=200"
        page = query(session, crm, ACCOUNT_QUERY + "2000-01-01T00:00:00Z").json()
        seen, pages = [], 0
        while True:
            pages += 1
            assert page["totalSize"] == 450
            seen += [r["External_Id__c"] for r in page["records"]]
            if page["done"]:
                assert "nextRecordsUrl" not in page
                break
            page = session.get(f"{crm.url}{page['nextRecordsUrl']}", timeout=10).json()
        assert pages == 3
        assert sorted(seen) == sorted(a["external_id"] for a in many)
        bad = session.get(f"{crm.url}{DATA}/query/01gNOPE-200", timeout=10)
        assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


# ---- faults -----------------------------------------------------------------------------------
def test_faults_by_request_number(clock):
    faults = [
        {"kind": "server_error", "after_requests": 0},
        {"kind": "rate_limit_burst", "after_requests": 1},
        {"kind": "daily_limit", "after_requests": 2},
    ]
    with start_crm(crm_config(faults=faults), clock=clock) as crm:
        headers = {"Authorization": f"Bearer {token(crm).json()['access_token']}"}
        url = f"{crm.url}{DATA}/sobjects/Account/describe"
        answers = [requests.get(url, headers=headers, timeout=10) for _ in range(4)]
        assert [a.status_code for a in answers] == [503, 503, 403, 200]
        assert [a.json()[0]["errorCode"] for a in answers[:3]] == [
            "SERVER_UNAVAILABLE",
            "SERVER_UNAVAILABLE",
            "REQUEST_LIMIT_EXCEEDED",
        ]
        assert crm.stats()["faults_fired"] == {
            "server_error": 1,
            "rate_limit_burst": 1,
            "daily_limit": 1,
        }
        stats = requests.get(f"{crm.url}/_sandbox/crm/stats", timeout=10).json()
        assert stats["api_by_status"] == {"503": 2, "403": 1, "200": 1}


# ---- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_owner": GONE}, "crm.default_owner: user '005Sb0000000013AAA' is not active"),
        (
            {"accounts": [{"external_id": "a", "Name": "A", "Industry": "Mining"}]},
            "crm.accounts[0].Industry: 'Mining' is not in the Industry picklist",
        ),
        (
            {"accounts": [{"external_id": "a", "Name": "A", "owner": "005nobody"}]},
            "crm.accounts[0].owner: '005nobody' is not one of the users",
        ),
        ({"accounts": [{"external_id": "a"}]}, "crm.accounts[0]: give `Name`"),
        (
            {"accounts": [{"external_id": "a", "Name": "A", "Nmae": "typo"}]},
            "crm.accounts[0].Nmae: unknown key",
        ),
        ({"picklists": {"Rating": ["Hot"]}}, "crm.picklists.Rating: unknown key"),
        ({"session_ttl_seconds": 0}, "crm.session_ttl_seconds: must be > 0"),
        ({"faults": [{"kind": "daily_limit"}]}, "crm.faults[0].after_requests: required"),
        (
            {
                "users": [
                    {"id": "005a", "name": "A", "email": "a@x"},
                    {"id": "005a", "name": "B", "email": "b@x"},
                ]
            },
            "crm.users[1].id: duplicate user id",
        ),
    ],
)
def test_config_errors_name_the_path(overrides, message):
    with pytest.raises(ScenarioError) as error:
        crm_config(**overrides)
    assert str(error.value).startswith(f"scenario.yaml: {message}")
