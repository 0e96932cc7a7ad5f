"""CrmClient against the CRM sandbox over real HTTP: outcomes, owner lookup, describe, auth, faults."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.crm_app import parse_crm, start_crm
from integration_assets.sandbox.scenario import _Reader
from integration_assets.systems.crm import CrmClient, soql_string
from integration_assets.systems.write_outcome import TargetAuthError

START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
CLIENT_ID = "crm-client-test"
SECRET = "crm-client-secret-77aa"
ALICE = "005Sb0000000011AAA"
TWIN_A = "005Sb0000000021AAA"
TWIN_B = "005Sb0000000022AAA"
OBRIEN = "005Sb0000000031AAA"
CRM_YAML = {
    "client_id": CLIENT_ID,
    "client_secret": SECRET,
    "users": [
        {"id": ALICE, "name": "Alice", "email": "alice@example.com"},
        {"id": TWIN_A, "name": "Sam One", "email": "sam@example.com"},
        {"id": TWIN_B, "name": "Sam Two", "email": "sam@example.com", "active": False},
        {"id": OBRIEN, "name": "Pat O'Brien", "email": "o'brien@example.com"},
    ],
    "accounts": [
        {"external_id": "seed-1", "Name": "Seeded", "last_modified": "2026-11-01T00:00:00Z"}
    ],
}


def config(**overrides):
    return parse_crm(_Reader(Path("scenario.yaml")), {**CRM_YAML, **overrides})


@pytest.fixture
def crm_factory():
    started = []

    def start(**overrides):
        running = start_crm(config(**overrides), clock=ScenarioClock(START))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def client_for(crm, **overrides):
    settings = {
        "base_url": crm.url,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        **overrides,
    }
    return CrmClient(**settings)


@pytest.fixture
def crm(crm_factory):
    return crm_factory()


@pytest.fixture
def client(crm):
    return client_for(crm)


ACME = {"Name": "Acme", "BillingCountry": "GB", "Customer_Segment__c": "Wholesale"}


def test_upsert_creates_then_a_second_identical_upsert_makes_no_second_document(crm, client):
    first = client.upsert("Account", "cust-1", ACME, idempotency_key="cust-1:aaa")
    again = client.upsert("Account", "cust-1", ACME, idempotency_key="cust-1:aaa")

    assert (first.outcome, first.http_status, first.created) == ("delivered", 201, True)
    assert first.target_record_id.startswith("001") and first.error_class is None
    assert (again.outcome, again.http_status, again.created) == ("delivered", 200, False)
    assert again.target_record_id == first.target_record_id
    stats = crm.stats()
    assert stats["documents"]["Account"] == 2  # the seed and this one
    assert stats["writes"]["Account"]["created"] == 1
    assert stats["writes"]["Account"]["unchanged"] == 1


def test_upsert_of_a_changed_account_is_an_update(crm, client):
    client.upsert("Account", "cust-1", ACME, idempotency_key="k1")
    changed = client.upsert(
        "Account", "cust-1", {**ACME, "Phone": "+44 20 1"}, idempotency_key="k2"
    )
    assert (changed.outcome, changed.created) == ("delivered", False)
    assert crm.stats()["writes"]["Account"]["updated"] == 1


def test_owner_lookup_by_email_found_none_and_two(client):
    found = client.users_by_email("ALICE@example.com")
    assert [(u["Id"], u["IsActive"]) for u in found] == [(ALICE, True)]
    assert "attributes" not in found[0]
    assert client.users_by_email("nobody@example.com") == []
    twins = client.users_by_email("sam@example.com")
    assert sorted(u["Id"] for u in twins) == [TWIN_A, TWIN_B]
    assert {u["Id"]: u["IsActive"] for u in twins} == {TWIN_A: True, TWIN_B: False}


def test_an_email_with_a_quote_is_escaped_and_found(client):
    assert [u["Id"] for u in client.users_by_email("o'brien@example.com")] == [OBRIEN]


def test_a_soql_injection_in_the_email_is_quoted_and_finds_nothing(crm, client):
    assert client.users_by_email("x' OR Email != '") == []
    # The CRM read it as one (odd) address: a well-formed query answered 200, not a 400.
    assert crm.stats()["by_route"]["query"] == {"200": 1}


def test_soql_string_escapes_backslash_before_quote():
    assert soql_string("a\\'b") == "'a\\\\\\'b'"
    assert soql_string("line\nbreak") == "'line\\nbreak'"


def test_describe_picklists_and_record_types_fetch_once(crm, client):
    assert client.picklist_values("Account", "Customer_Segment__c") == {
        "Retail",
        "Wholesale",
        "VIP",
        "Marketplace",
    }
    assert "Technology" in client.picklist_values("Account", "Industry")
    record_types = client.record_type_ids("Account")
    assert set(record_types) == {"Business Account", "Person Account"}
    assert all(value.startswith("012") for value in record_types.values())
    assert crm.stats()["by_route"]["describe"] == {"200": 1}


def test_picklist_violation_is_rejected_in_the_crms_words(crm, client):
    outcome = client.upsert("Account", "cust-2", {**ACME, "Industry": "Mining"}, "k")
    assert outcome.outcome == "rejected"
    assert outcome.error_class == "validation" and outcome.http_status == 400
    assert outcome.message == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value for restricted picklist field: "
        "Mining (Industry)"
    )
    assert outcome.retryable is False
    assert crm.stats()["documents"]["Account"] == 1


def test_contact_with_unknown_account_is_missing_reference_until_the_account_lands(crm, client):
    contact = {"LastName": "Coyote", "Account": {"External_Id__c": "cust-3"}}
    early = client.upsert("Contact", "ct-1", contact, "k-ct")
    assert (early.outcome, early.error_class) == ("missing_reference", "missing_reference")
    assert early.retryable is True
    assert "Foreign key external ID: cust-3 not found" in early.message

    client.upsert("Account", "cust-3", ACME, "k-acct")
    later = client.upsert("Contact", "ct-1", contact, "k-ct")
    assert (later.outcome, later.created) == ("delivered", True)
    assert crm.stats()["documents"]["Contact"] == 1


def test_session_expiry_mid_run_is_refreshed_once_and_the_run_continues(crm_factory):
    crm = crm_factory(faults=[{"kind": "expire_sessions", "after_requests": 1}])
    client = client_for(crm)
    outcomes = [client.upsert("Account", f"cust-{i}", ACME, f"k{i}") for i in range(3)]
    assert [o.outcome for o in outcomes] == ["delivered"] * 3
    assert client.token_fetches == 2
    stats = crm.stats()
    assert stats["by_route"]["upsert"] == {"201": 3, "401": 1}
    assert stats["sessions_issued"] == 2


def test_wrong_secret_fails_at_once_naming_the_variable_not_the_secret(
    crm_factory, tmp_path, monkeypatch
):
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path))
    crm = crm_factory()
    wrong = "definitely-wrong-secret-123"
    client = client_for(crm, client_secret=wrong)
    with pytest.raises(TargetAuthError) as error:
        client.upsert("Account", "cust-1", ACME, "k")
    message = str(error.value)
    assert "CRM_CLIENT_SECRET" in message and "invalid client credentials" in message
    assert wrong not in message and SECRET not in message
    assert crm.stats()["by_route"] == {"token": {"400": 1}}  # no retry, no API call
    audit = "".join(path.read_text() for path in tmp_path.glob("*.jsonl"))
    assert '"system":"crm"' in audit and '"direction":"auth"' in audit
    assert wrong not in audit


def test_a_503_is_retried_and_then_delivered(crm_factory):
    crm = crm_factory(faults=[{"kind": "server_error", "after_requests": 0, "count": 2}])
    client = client_for(crm)
    outcome = client.upsert("Account", "cust-1", ACME, "k")
    assert (outcome.outcome, outcome.http_status) == ("delivered", 201)
    assert client.stats.retries_server_error == 2
    assert crm.stats()["api_by_status"] == {"503": 2, "201": 1}
    assert crm.stats()["documents"]["Account"] == 2


def test_503s_outlasting_the_retries_are_unavailable(crm_factory):
    crm = crm_factory(faults=[{"kind": "rate_limit_burst", "after_requests": 0, "count": 5}])
    outcome = client_for(crm, max_retries=1).upsert("Account", "cust-1", ACME, "k")
    assert (outcome.outcome, outcome.error_class, outcome.http_status) == (
        "unavailable",
        "server_error",
        503,
    )
    assert outcome.retryable is True
    assert crm.stats()["api_by_status"] == {"503": 2}


def test_request_limit_exceeded_is_unavailable_rate_limited_without_retrying(crm_factory):
    crm = crm_factory(faults=[{"kind": "daily_limit", "after_requests": 0, "count": 3}])
    outcome = client_for(crm).upsert("Account", "cust-1", ACME, "k")
    assert (outcome.outcome, outcome.error_class, outcome.http_status) == (
        "unavailable",
        "rate_limited",
        403,
    )
    assert "REQUEST_LIMIT_EXCEEDED" in outcome.message
    assert crm.stats()["api_by_status"] == {"403": 1}


def test_iter_accounts_pages_with_next_records_url(crm_factory):
    many = [{"external_id": f"bulk-{i:03d}", "Name": f"Bulk {i}"} for i in range(450)]
    crm = crm_factory(accounts=many)
    client = client_for(crm, query_batch_size=200)
    pages = list(client.iter_accounts(datetime(2026, 1, 1, tzinfo=UTC)))
    assert [len(page) for page in pages] == [200, 200, 50]
    seen = [row["External_Id__c"] for page in pages for row in page]
    assert sorted(seen) == sorted(a["external_id"] for a in many)
    assert set(pages[0][0]) >= {"Id", "Name", "OwnerId", "Owner", "LastModifiedDate"}
    assert list(client.iter_accounts(START)) == []  # nothing modified after the clock's now


def test_iter_accounts_reads_only_changes_after_the_moment(crm, client):
    client.upsert("Account", "cust-1", ACME, "k")  # modified at START
    rows = [
        row for page in client.iter_accounts(datetime(2026, 11, 10, tzinfo=UTC)) for row in page
    ]
    assert [row["External_Id__c"] for row in rows] == ["cust-1"]
    assert rows[0]["Owner"]["Email"] == "alice@example.com"
