"""The ERP client against the real sandbox ERP over HTTP: write outcomes, retries, token refresh,
auth failures, and the audit trail of every attempt (with no secret in it)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest

from integration_assets.sandbox.erp_app import ErpConfig, RunningErp, start_erp
from integration_assets.sandbox.scenario import Fault
from integration_assets.systems.bulk import RecordWrite
from integration_assets.systems.erp import ErpClient
from integration_assets.systems.write_outcome import TargetAuthError, TargetError

CUSTOMER = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "billing_address": {"line1": "1 Main St", "postal_code": "02110", "country": "US"},
}
ORDER = {
    "customer_eid": "c-1",
    "currency": "USD",
    "lines": [{"sku": "MUG-1", "quantity": 1, "unit_price": "12.50", "tax": "1.00"}],
    "total": "13.50",
}
SECRET = "erp-client-secret-that-must-never-be-written-anywhere"


@pytest.fixture(autouse=True)
def audit_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "audit"
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(directory))
    return directory


def audit_lines(directory: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


@contextmanager
def erp_with(*faults: Fault) -> Iterator[RunningErp]:
    with start_erp(replace(ErpConfig(), client_secret=SECRET, faults=faults)) as erp:
        yield erp


@pytest.fixture
def erp() -> Iterator[RunningErp]:
    with erp_with() as running:
        yield running


def client_for(erp: RunningErp, **overrides) -> ErpClient:
    settings = {
        "base_url": erp.url,
        "client_id": erp.client_id,
        "client_secret": erp.client_secret,
        "backoff_base_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "max_retries": 4,
    }
    return ErpClient(**{**settings, **overrides})


def test_a_new_record_is_delivered_and_created(erp):
    client = client_for(erp)
    outcome = client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:hash1")
    assert outcome.outcome == "delivered" and outcome.created is True
    assert outcome.http_status == 201 and outcome.error_class is None
    assert outcome.target_record_id == erp.erp.documents("customer")[0]["id"]
    assert not outcome.retryable


def test_re_upserting_never_makes_a_second_document(erp):
    client = client_for(erp)
    first = client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:hash1")
    replayed = client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:hash1")
    rewritten = client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:other-key")
    assert replayed == first  # the same key replays the first answer, `created` included
    assert rewritten.outcome == "delivered" and rewritten.created is False
    assert rewritten.target_record_id == first.target_record_id
    assert erp.stats()["documents"]["customer"] == 1
    assert erp.erp.documents("customer")[0]["version"] == 1


def test_a_validation_error_is_rejected_with_the_erps_field_messages(erp):
    bad = {**CUSTOMER, "email": "not-an-email", "billing_address": {"city": "Boston"}}
    outcome = client_for(erp).upsert("customer", "c-1", bad, "k")
    assert outcome.outcome == "rejected" and outcome.error_class == "validation"
    assert outcome.http_status == 400 and not outcome.retryable
    assert outcome.message == (
        "email: invalid (must be a valid email address); billing_address.country: required"
    )
    assert erp.stats()["documents"]["customer"] == 0


def test_a_conflict_is_a_conflict(erp):
    client = client_for(erp)
    client.upsert("customer", "c-1", CUSTOMER, "k1")
    outcome = client.upsert("customer", "c-2", CUSTOMER, "k2")
    assert outcome.outcome == "conflict" and outcome.http_status == 409
    assert outcome.message == "the email address is already used by customer 'c-1'"
    assert not outcome.retryable


def test_a_missing_parent_is_missing_reference_and_delivers_once_it_exists(erp):
    client = client_for(erp)
    early = client.upsert("sales_order", "o-1", ORDER, "order:o-1:h")
    assert early.outcome == "missing_reference" and early.retryable
    assert early.error_class == "missing_reference"
    assert "customer_eid: reference_not_found" in early.message
    client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:h")
    later = client.upsert("sales_order", "o-1", ORDER, "order:o-1:h")
    assert later.outcome == "delivered" and later.created is True


def test_a_burst_of_503s_is_retried_until_delivered(audit_dir):
    with erp_with(Fault(kind="server_error", after_requests=0, count=3, status=503)) as erp:
        client = client_for(erp)
        outcome = client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:h")
        assert outcome.outcome == "delivered" and outcome.created is True
        assert client.stats.retries_server_error == 3
        assert erp.stats()["by_route"]["put_record"] == {"503": 3, "201": 1}
    puts = [line for line in audit_lines(audit_dir) if line["method"] == "PUT"]
    assert [(line["attempt"], line["status"]) for line in puts] == [
        (1, "503"),
        (2, "503"),
        (3, "503"),
        (4, "201"),
    ]
    assert {line["idempotency_key"] for line in puts} == {"customer:c-1:h"}
    assert {line["direction"] for line in puts} == {"outbound"}
    assert len({line["request_hash"] for line in puts}) == 1  # the same bytes every attempt


def test_a_target_down_through_every_retry_is_unavailable_and_fast(erp):
    client = client_for(erp, max_retries=3)
    client.upsert("customer", "c-1", CUSTOMER, "k1")
    erp.erp.set_down(True)
    started = time.monotonic()
    outcome = client.upsert("customer", "c-2", {**CUSTOMER, "email": "b@example.com"}, "k2")
    assert time.monotonic() - started < 2
    assert outcome.outcome == "unavailable" and outcome.retryable
    assert outcome.error_class == "server_error" and outcome.http_status == 503
    assert "503 after 4 attempts" in outcome.message
    assert erp.stats()["by_route"]["put_record"] == {"201": 1, "503": 4}


def test_an_unreachable_target_is_unavailable_with_connection_as_the_cause(erp):
    client = client_for(erp, max_retries=1)
    client.upsert("customer", "c-1", CUSTOMER, "k1")  # holds a token
    erp.stop()
    outcome = client.upsert("customer", "c-1", CUSTOMER, "k1")
    assert outcome.outcome == "unavailable" and outcome.error_class == "connection"
    assert outcome.http_status is None and "no answer after 2 attempts" in outcome.message


def test_a_token_expiring_mid_run_is_refreshed_once_and_the_run_goes_on(audit_dir):
    with erp_with(Fault(kind="expire_tokens", after_requests=2)) as erp:
        client = client_for(erp)
        outcomes = [
            client.upsert("customer", f"c-{n}", {**CUSTOMER, "email": f"c{n}@example.com"}, f"k{n}")
            for n in range(4)
        ]
        assert [outcome.outcome for outcome in outcomes] == ["delivered"] * 4
        assert client.token_fetches == 2
        assert erp.stats()["by_route"]["put_record"] == {"201": 4, "401": 1}
        assert erp.stats()["documents"]["customer"] == 4
    directions = [line["direction"] for line in audit_lines(audit_dir)]
    assert directions == [
        "auth",
        "outbound",
        "outbound",
        "outbound",
        "auth",
        "outbound",
        "outbound",
    ]


def test_a_token_refused_right_after_a_refresh_fails_the_run():
    # Every token dies before each of the first two requests: the refresh cannot help.
    faults = (
        Fault(kind="expire_tokens", after_requests=0),
        Fault(kind="expire_tokens", after_requests=1),
    )
    with erp_with(*faults) as erp:
        client = client_for(erp)
        with pytest.raises(TargetAuthError) as error:
            client.upsert("customer", "c-1", CUSTOMER, "k")
        assert "ERP_CLIENT_ID" in str(error.value) and "ERP_CLIENT_SECRET" in str(error.value)
        assert client.token_fetches == 2
        assert erp.stats()["by_route"]["put_record"] == {"401": 2}


def test_a_wrong_secret_fails_at_once_naming_the_variable_not_the_secret(erp, audit_dir):
    client = client_for(erp, client_secret="a-wrong-secret-value")
    with pytest.raises(TargetAuthError) as error:
        client.upsert("customer", "c-1", CUSTOMER, "k")
    message = str(error.value)
    assert "Check ERP_CLIENT_ID and ERP_CLIENT_SECRET" in message
    assert "a-wrong-secret-value" not in message and SECRET not in message
    assert erp.stats()["by_route"] == {"token": {"401": 1}}  # no retries, no API call
    audit_text = "".join(path.read_text() for path in audit_dir.glob("*.jsonl"))
    assert "a-wrong-secret-value" not in audit_text
    assert [line["status"] for line in audit_lines(audit_dir)] == ["401"]


def test_every_attempt_is_audited_and_no_secret_or_token_reaches_the_file(audit_dir):
    with erp_with(Fault(kind="server_error", after_requests=1, count=1)) as erp:
        client = client_for(erp)
        client.upsert("customer", "c-1", CUSTOMER, "k1")
        client.upsert("sales_order", "o-1", ORDER, "k2")
        assert client.get("customer", "c-1")["version"] == 1
        answered = sum(
            count for statuses in erp.stats()["by_route"].values() for count in statuses.values()
        )
        tokens = erp.erp.tokens.issued_tokens()
    lines = audit_lines(audit_dir)
    assert len(lines) == answered == 5  # token, PUT, PUT 503, PUT, GET
    assert [(line["system"], line["method"], line["attempt"]) for line in lines] == [
        ("erp", "POST", 1),
        ("erp", "PUT", 1),
        ("erp", "PUT", 1),
        ("erp", "PUT", 2),
        ("erp", "GET", 1),
    ]
    assert lines[-1]["direction"] == "inbound"
    text = "".join(path.read_text() for path in audit_dir.glob("*.jsonl"))
    assert tokens and all(token not in text for token in tokens)
    assert SECRET not in text


def test_get_reads_one_record_or_none(erp):
    client = client_for(erp)
    client.upsert("customer", "c/1", CUSTOMER, "k")
    record = client.get("customer", "c/1")
    assert record["external_id"] == "c/1" and record["record"] == CUSTOMER
    assert client.get("customer", "nobody") is None


def test_iter_records_pages_through_changes_since_a_time(erp):
    client = client_for(erp, page_limit=2)
    for n in range(5):
        client.upsert("customer", f"c-{n}", {**CUSTOMER, "email": f"c{n}@example.com"}, f"k{n}")
    pages = list(client.iter_records("customer"))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [record["external_id"] for page in pages for record in page] == [
        f"c-{n}" for n in range(5)
    ]
    cutoff = erp.clock.now() + timedelta(minutes=1)
    erp.clock.advance(timedelta(hours=1))
    client.upsert("customer", "c-2", {"credit_limit": "900.00", "currency": "USD"}, "credit")
    changed = [record for page in client.iter_records("customer", cutoff) for record in page]
    assert [(r["external_id"], r["record"]["credit_limit"]) for r in changed] == [("c-2", "900.00")]


def test_the_audit_lines_carry_the_dagster_run_id(erp, audit_dir):
    @dg.asset
    def erp_customer(erp: ErpClient) -> None:
        outcome = erp.upsert("customer", "c-1", CUSTOMER, "k")
        assert outcome.outcome == "delivered"

    result = dg.materialize(
        [erp_customer],
        resources={"erp": client_for(erp)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    lines = audit_lines(audit_dir)
    assert len(lines) == 2 and {line["run_id"] for line in lines} == {result.run_id}
    assert all(path.name.startswith(result.run_id) for path in audit_dir.glob("*.jsonl"))


def test_an_unknown_record_type_is_a_programming_error(erp):
    with pytest.raises(ValueError, match="unknown ERP record type 'vendor'"):
        client_for(erp).upsert("vendor", "v-1", {}, "k")


# ---- bulk writes through the batch endpoint ----------------------------------------------------
def test_a_bulk_upsert_reads_each_records_outcome_as_a_single_write_would(erp):
    client = client_for(erp)
    writes = [
        RecordWrite("c-1", CUSTOMER, "customer:c-1:h"),
        RecordWrite("c-2", {**CUSTOMER, "email": "not-an-email"}, "customer:c-2:h"),
        RecordWrite("c-3", CUSTOMER, "customer:c-3:h"),  # Ada's email again: a conflict
    ]
    bulk = client.upsert_many("customer", writes)
    assert [outcome.outcome for outcome in bulk] == ["delivered", "rejected", "conflict"]
    assert bulk[0].created and bulk[0].target_record_id == erp.erp.documents("customer")[0]["id"]
    assert bulk[1].message == "email: invalid (must be a valid email address)"
    assert bulk[2].message == "the email address is already used by customer 'c-1'"
    # The same writes one at a time get the same outcomes (the first replays its key).
    assert [client.upsert("customer", *write) for write in writes] == bulk
    assert erp.stats()["by_route"]["batch_records"] == {"200": 1}


def test_a_record_is_audited_the_same_way_in_a_bulk_write_as_alone(erp, audit_dir):
    client = client_for(erp)
    client.upsert_many("customer", [RecordWrite("c-1", CUSTOMER, "customer:c-1:h")])
    client.upsert("customer", "c-1", CUSTOMER, "customer:c-1:h")  # replays the same key
    bulk, alone = [line for line in audit_lines(audit_dir) if line["direction"] == "outbound"]
    assert bulk["endpoint"].endswith("/api/v1/records/customer/batch") and bulk["method"] == "POST"
    assert alone["endpoint"].endswith("/api/v1/records/customer/eid:c-1")
    assert bulk["idempotency_key"] == alone["idempotency_key"] == "customer:c-1:h"
    assert bulk["request_hash"] == alone["request_hash"]  # the record's own body, hashed
    assert bulk["status"] == alone["status"] == "201"  # the record's answer, not the batch's 200
    assert orjson.loads(bulk["response_short"])["external_id"] == "c-1"


def test_a_bulk_write_retried_after_5xx_has_one_line_per_record_per_attempt(audit_dir):
    with erp_with(Fault(kind="server_error", after_requests=0, count=2, status=503)) as erp:
        client = client_for(erp)
        writes = [
            RecordWrite(f"c-{n}", {**CUSTOMER, "email": f"c{n}@example.com"}, f"customer:c-{n}:h")
            for n in range(3)
        ]
        assert {outcome.outcome for outcome in client.upsert_many("customer", writes)} == {
            "delivered"
        }
        assert client.stats.requests - client.token_fetches == 3  # one request, two retries
    posts = [line for line in audit_lines(audit_dir) if line["endpoint"].endswith("/batch")]
    assert sorted((line["idempotency_key"], line["attempt"], line["status"]) for line in posts) == [
        (f"customer:c-{n}:h", attempt, status)
        for n in range(3)
        for attempt, status in ((1, "503"), (2, "503"), (3, "201"))
    ]
    hashes = {
        line["idempotency_key"]: line["request_hash"] for line in posts if line["attempt"] == 3
    }
    assert len(set(hashes.values())) == 3


def test_a_bulk_write_to_a_target_that_stays_down_is_unavailable_for_every_record():
    with erp_with(Fault(kind="down", after_requests=0, count=100)) as erp:
        writes = [RecordWrite("c-1", CUSTOMER, "a"), RecordWrite("c-2", CUSTOMER, "b")]
        outcomes = client_for(erp, max_retries=1).upsert_many("customer", writes)
        assert [(o.outcome, o.error_class) for o in outcomes] == [
            ("unavailable", "server_error")
        ] * 2
        assert erp.stats()["documents"]["customer"] == 0


def test_a_bulk_answer_that_does_not_match_the_records_sent_fails_the_run(erp):
    """An ERP without the batch endpoint answers 404: no outcome would be true, so it stops."""
    client = client_for(erp, base_url=f"{erp.url}/elsewhere", token_url=erp.token_url)
    with pytest.raises(TargetError, match="batch_size to 1"):
        client.upsert_many("customer", [RecordWrite("c-1", CUSTOMER, "a")])


def test_a_bulk_upsert_takes_at_most_batch_size_records(erp):
    client = client_for(erp, batch_size=2)
    writes = [RecordWrite(f"c-{n}", CUSTOMER, f"k{n}") for n in range(3)]
    with pytest.raises(ValueError, match="1 to 2 records"):
        client.upsert_many("customer", writes)
    assert erp.stats()["api_requests"] == 0
