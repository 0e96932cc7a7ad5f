"""The sandbox ERP over real HTTP on 127.0.0.1: tokens, upserts, validation, references, conflicts,
rate limit, faults and outages, as the ERP protocol (issue #5) defines them."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml

from integration_assets.sandbox.erp_app import (
    ErpConfig,
    ErpRateLimit,
    RunningErp,
    parse_erp,
    start_erp,
)
from integration_assets.sandbox.oauth_server import TokenIssuer
from integration_assets.sandbox.scenario import Fault, ScenarioError, _Reader

CUSTOMER = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "is_company": False,
    "billing_address": {
        "line1": "1 Main St",
        "city": "Boston",
        "postal_code": "02110",
        "country": "US",
    },
}
ORDER = {
    "customer_eid": "c-1",
    "order_number": "1001",
    "order_date": "2026-11-20",
    "currency": "USD",
    "status": "open",
    "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "12.50", "tax": "2.00"}],
    "shipping": "5.00",
    "tax_total": "2.00",
    "discount_total": "0.00",
    "total": "32.00",
}
INVOICE = {"sales_order_eid": "o-1", "customer_eid": "c-1", "currency": "USD", "amount": "32.00"}


@contextmanager
def erp_with(**changes) -> Iterator[RunningErp]:
    with start_erp(replace(ErpConfig(), **changes)) as erp:
        yield erp


@pytest.fixture
def erp() -> Iterator[RunningErp]:
    with erp_with() as running:
        yield running


def token_for(erp: RunningErp, secret: str | None = None) -> requests.Response:
    return requests.post(
        erp.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": erp.client_id,
            "client_secret": erp.client_secret if secret is None else secret,
        },
        timeout=5,
    )


class Api:
    """A bearer-token session against one running ERP."""

    def __init__(self, erp: RunningErp) -> None:
        self.erp = erp
        self.token = token_for(erp).json()["access_token"]

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def put(self, record_type: str, eid: str, body, key: str | None = None) -> requests.Response:
        return requests.put(
            f"{self.erp.url}/api/v1/records/{record_type}/eid:{eid}",
            json=body,
            headers=self.headers(key),
            timeout=5,
        )

    def batch(self, record_type: str, body) -> requests.Response:
        return requests.post(
            f"{self.erp.url}/api/v1/records/{record_type}/batch",
            json=body,
            headers=self.headers(),
            timeout=5,
        )

    def get(self, record_type: str, eid: str) -> requests.Response:
        return requests.get(
            f"{self.erp.url}/api/v1/records/{record_type}/eid:{eid}",
            headers=self.headers(),
            timeout=5,
        )

    def list(self, record_type: str, **params) -> requests.Response:
        return requests.get(
            f"{self.erp.url}/api/v1/records/{record_type}",
            params=params,
            headers=self.headers(),
            timeout=5,
        )


@pytest.fixture
def api(erp) -> Api:
    return Api(erp)


def field_errors(response: requests.Response) -> dict[str, str]:
    body = response.json()
    assert response.status_code == 400 and body["error"] == "validation_failed", body
    return {entry["field"]: entry["code"] for entry in body["fields"]}


# ---- tokens and 401 shapes -------------------------------------------------------------------
def test_the_token_endpoint_issues_a_bearer_token_that_lives_the_configured_time():
    with erp_with(token_ttl_seconds=120) as erp:
        response = token_for(erp)
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 120
        assert len(body["access_token"]) >= 32
        assert response.headers["Cache-Control"] == "no-store"


def test_a_wrong_client_secret_is_refused_as_invalid_client(erp):
    response = token_for(erp, secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }
    assert erp.stats()["tokens_issued"] == 0


def test_a_token_request_without_the_client_credentials_grant_is_refused(erp):
    response = requests.post(
        erp.token_url,
        data={"grant_type": "password", "client_id": erp.client_id},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token-we-issued", "Basic abc"])
def test_a_missing_or_unknown_token_is_invalid_token(erp, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{erp.url}/api/v1/records/customer", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "The access token is invalid",
    }
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_the_expire_tokens_fault_makes_held_tokens_expired_and_a_new_token_works():
    with erp_with(faults=(Fault(kind="expire_tokens", after_requests=1),)) as erp:
        api = Api(erp)
        assert api.list("customer").status_code == 200
        expired = api.list("customer")
        assert expired.status_code == 401
        assert expired.json() == {
            "error": "invalid_token",
            "error_description": "The access token expired",
        }
        assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        fresh = Api(erp)
        assert fresh.list("customer").status_code == 200
        assert erp.stats()["faults_fired"] == {"expire_tokens": 1}


def test_a_token_expires_after_its_lifetime_on_the_issuers_clock():
    now = [1000.0]
    issuer = TokenIssuer("client", "secret", 60, clock=lambda: now[0])
    status, body = issuer.issue(
        {"grant_type": "client_credentials", "client_id": "client", "client_secret": "secret"}
    )
    assert status == 200
    header = f"Bearer {body['access_token']}"
    now[0] = 1059.9
    assert issuer.check(header) == "ok"
    now[0] = 1060.0
    assert issuer.check(header) == "expired"
    assert issuer.check(None) == "missing"
    assert issuer.check("Bearer someone-elses") == "invalid"


# ---- upserts -----------------------------------------------------------------------------------
def test_an_upsert_creates_then_updates_then_leaves_an_equal_body_alone(erp, api):
    created = api.put("customer", "c-1", CUSTOMER)
    assert created.status_code == 201
    body = created.json()
    assert body["created"] is True and body["version"] == 1
    assert body["external_id"] == "c-1" and body["type"] == "customer"
    assert body["record"] == CUSTOMER

    same = api.put("customer", "c-1", CUSTOMER)
    assert same.status_code == 200
    assert same.json()["created"] is False and same.json()["version"] == 1
    assert same.json()["id"] == body["id"]

    changed = api.put("customer", "c-1", {**CUSTOMER, "phone": "+1 617 555 0100"})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2 and changed.json()["created"] is False

    read = api.get("customer", "c-1").json()
    assert read == {
        "id": body["id"],
        "external_id": "c-1",
        "type": "customer",
        "version": 2,
        "record": {**CUSTOMER, "phone": "+1 617 555 0100"},
    }
    stats = erp.stats()
    assert stats["documents"]["customer"] == 1
    assert stats["writes"] == {"creates": 1, "updates": 1, "noops": 1, "replays": 0}


def test_a_partial_body_replaces_the_record_rather_than_patching_it(api):
    api.put("customer", "c-1", {**CUSTOMER, "phone": "+1 617 555 0100"})
    api.put("customer", "c-1", CUSTOMER)
    assert "phone" not in api.get("customer", "c-1").json()["record"]


def test_reading_an_unknown_record_or_type_is_a_404(api):
    assert api.get("customer", "nobody").status_code == 404
    unknown = api.put("vendor", "v-1", {"name": "x"})
    assert unknown.status_code == 404 and "unknown record type" in unknown.json()["message"]


def test_an_external_id_with_a_slash_round_trips(api):
    assert api.put("customer", "shop%2F42", CUSTOMER).status_code == 201
    assert api.get("customer", "shop%2F42").json()["external_id"] == "shop/42"


def test_a_repeated_idempotency_key_replays_the_first_answer(erp, api):
    first = api.put("customer", "c-1", CUSTOMER, key="k-1")
    again = api.put("customer", "c-1", CUSTOMER, key="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert erp.stats()["documents"]["customer"] == 1
    assert erp.stats()["writes"]["replays"] == 1
    reused = api.put("customer", "c-1", {**CUSTOMER, "name": "Ada King"}, key="k-1")
    assert reused.status_code == 422 and reused.json()["error"] == "idempotency_key_reused"
    assert api.get("customer", "c-1").json()["record"]["name"] == "Ada Lovelace"


# ---- validation ---------------------------------------------------------------------------------
def test_customer_validation_names_every_field_and_stores_nothing(erp, api):
    response = api.put(
        "customer",
        "c-1",
        {
            "name": "x" * 81,
            "email": "not-an-email",
            "is_company": "yes",
            "billing_address": {"line1": "1 Main St", "country": "US"},
            "nickname": "ada",
        },
    )
    assert field_errors(response) == {
        "nickname": "unknown_field",
        "name": "too_long",
        "email": "invalid",
        "is_company": "invalid",
        "billing_address.postal_code": "required",
    }
    messages = {entry["field"]: entry["message"] for entry in response.json()["fields"]}
    assert messages["name"] == "must be at most 80 characters"
    assert "not-an-email" not in response.text  # values are never echoed
    assert erp.stats()["documents"]["customer"] == 0


def test_a_customer_needs_a_name_an_email_and_an_address_country(api):
    response = api.put("customer", "c-1", {"billing_address": {"city": "Paris"}})
    assert field_errors(response) == {
        "name": "required",
        "email": "required",
        "billing_address.country": "required",
    }
    lower = api.put("customer", "c-1", {**CUSTOMER, "billing_address": {"country": "fr"}})
    assert field_errors(lower) == {"billing_address.country": "invalid"}
    # Outside the US and Canada a postal code is optional.
    assert api.put("customer", "c-1", {**CUSTOMER, "billing_address": {"country": "FR"}}).ok


def test_sales_order_validation(api):
    api.put("customer", "c-1", CUSTOMER)
    response = api.put(
        "sales_order",
        "o-1",
        {
            **ORDER,
            "currency": "usd",
            "status": "shipped",
            "order_date": "20 Nov 2026",
            "lines": [
                {"sku": "MUG-1", "quantity": 0, "unit_price": "12.5"},
                {"quantity": 1, "colour": "red"},
            ],
            "total": 32,
        },
    )
    assert field_errors(response) == {
        "order_date": "invalid",
        "status": "invalid",
        "lines[0].quantity": "invalid",
        "lines[0].unit_price": "invalid",
        "lines[1].colour": "unknown_field",
        "lines[1].sku": "required",
        "total": "invalid",
        "currency": "invalid",
    }


def test_a_sales_order_needs_lines_unless_cancelled_and_a_currency_with_its_money(api):
    api.put("customer", "c-1", CUSTOMER)
    no_lines = api.put("sales_order", "o-1", {**ORDER, "lines": []})
    assert field_errors(no_lines) == {"lines": "required"}
    no_currency = {key: value for key, value in ORDER.items() if key != "currency"}
    assert field_errors(api.put("sales_order", "o-1", no_currency)) == {"currency": "required"}
    cancelled = {"customer_eid": "c-1", "status": "cancelled", "lines": []}
    assert api.put("sales_order", "o-1", cancelled).status_code == 201


@pytest.mark.parametrize(
    ("record_type", "body", "errors"),
    [
        (
            "invoice",
            {"sales_order_eid": "o-1", "currency": "USD", "amount": "0.00"},
            {"amount": "invalid"},
        ),
        ("invoice", {"currency": "USD"}, {"sales_order_eid": "required", "amount": "required"}),
        (
            "credit_note",
            {"invoice_eid": "i-1", "currency": "USD", "amount": "-1.00"},
            {"amount": "invalid"},
        ),
        ("payment_applied", {"invoice_eid": "i-1", "amount": "5.00"}, {"currency": "required"}),
        (
            "payment_applied",
            {"invoice_eid": "i-1", "currency": "USD", "amount": "5.00", "paid_at": "yesterday"},
            {"paid_at": "invalid"},
        ),
        (
            "invoice",
            {"sales_order_eid": "o-1", "currency": "JPY", "amount": "1200.00"},
            {"amount": "invalid"},
        ),
    ],
)
def test_amount_records_need_their_parent_and_a_positive_amount(api, record_type, body, errors):
    assert field_errors(api.put(record_type, "x-1", body)) == errors


def test_a_body_that_is_not_a_json_object_is_a_validation_error(erp, api):
    response = requests.put(
        f"{erp.url}/api/v1/records/customer/eid:c-1",
        data=b"[1, 2",
        headers={**api.headers(), "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["fields"][0]["message"] == "the body must be a JSON object"


# ---- references and conflicts --------------------------------------------------------------------
def test_a_reference_to_a_record_that_does_not_exist_yet_is_reference_not_found(erp, api):
    early = api.put("sales_order", "o-1", ORDER)
    assert field_errors(early) == {"customer_eid": "reference_not_found"}
    assert early.json()["message"] == "a referenced record does not exist"
    assert erp.stats()["documents"]["sales_order"] == 0
    api.put("customer", "c-1", CUSTOMER)
    assert api.put("sales_order", "o-1", ORDER).status_code == 201
    payment = {"invoice_eid": "i-1", "currency": "USD", "amount": "32.00"}
    assert field_errors(api.put("payment_applied", "p-1", payment)) == {
        "invoice_eid": "reference_not_found"
    }
    assert api.put("invoice", "i-1", INVOICE).status_code == 201
    assert api.put("payment_applied", "p-1", payment).status_code == 201


def test_an_email_belongs_to_one_customer(erp, api):
    api.put("customer", "c-1", CUSTOMER)
    clash = api.put("customer", "c-2", {**CUSTOMER, "email": "ADA@example.com"})
    assert clash.status_code == 409
    assert clash.json() == {
        "error": "conflict",
        "message": "the email address is already used by customer 'c-1'",
    }
    assert erp.stats()["documents"]["customer"] == 1


def test_a_customer_that_changes_its_email_frees_the_old_one(api):
    api.put("customer", "c-1", CUSTOMER)
    assert api.put("customer", "c-1", {**CUSTOMER, "email": "ada@new.example"}).status_code == 200
    # The old address is free for another customer; the new one is taken, in any case.
    assert api.put("customer", "c-2", CUSTOMER).status_code == 201
    clash = api.put("customer", "c-3", {**CUSTOMER, "email": "Ada@New.Example"})
    assert clash.status_code == 409 and "'c-1'" in clash.json()["message"]
    # Writing a customer again with its own address is no clash with itself.
    assert api.put("customer", "c-1", {**CUSTOMER, "email": "ada@new.example"}).status_code == 200


def test_an_invoiced_order_keeps_its_lines_and_amounts_and_an_invoice_its_amount(api):
    api.put("customer", "c-1", CUSTOMER)
    api.put("sales_order", "o-1", ORDER)
    # Before it is invoiced an order may change freely.
    assert api.put("sales_order", "o-1", {**ORDER, "shipping": "6.00"}).json()["version"] == 2
    api.put("sales_order", "o-1", ORDER)
    api.put("invoice", "i-1", INVOICE)
    edited = {**ORDER, "lines": [{**ORDER["lines"][0], "quantity": 3}], "total": "44.50"}
    refused = api.put("sales_order", "o-1", edited)
    assert refused.status_code == 409
    assert "already invoiced" in refused.json()["message"]
    assert "lines" in refused.json()["message"] and "total" in refused.json()["message"]
    # Fields that are not amounts still change, and an equal body stays a no-op.
    assert api.put("sales_order", "o-1", {**ORDER, "status": "closed"}).status_code == 200
    assert api.put("invoice", "i-1", {**INVOICE, "amount": "30.00"}).status_code == 409
    assert api.put("invoice", "i-1", {**INVOICE, "invoice_date": "2026-11-21"}).status_code == 200


# ---- ERP-owned credit terms -----------------------------------------------------------------------
def test_credit_terms_are_seeded_owned_by_the_erp_and_changed_only_by_the_credit_write():
    seed = yaml.safe_load(
        """
        customers:
          - external_id: c-1
            name: Ada Lovelace
            email: ada@example.com
            credit_limit: 5000
            payment_terms: NET30
            billing_address: {country: GB}
        """
    )
    with start_erp(parse_erp(_Reader(Path("scenario.yaml")), seed)) as erp:
        api = Api(erp)
        seeded = api.get("customer", "c-1").json()
        assert seeded["version"] == 1
        assert seeded["record"]["credit_limit"] == "5000.00"
        assert seeded["record"]["payment_terms"] == "NET30"

        full = {**CUSTOMER, "billing_address": {"country": "GB"}}
        assert field_errors(api.put("customer", "c-1", {**full, "credit_limit": "1.00"})) == {
            "credit_limit": "read_only"
        }
        kept = api.put("customer", "c-1", full).json()
        assert kept["version"] == 2 and kept["record"]["credit_limit"] == "5000.00"

        raised = api.put("customer", "c-1", {"credit_limit": "7500.00", "currency": "USD"})
        assert raised.status_code == 200 and raised.json()["version"] == 3
        assert raised.json()["record"] == {
            **full,
            "credit_limit": "7500.00",
            "currency": "USD",
            "payment_terms": "NET30",
        }
        listed = api.list("customer").json()["records"][0]["record"]
        assert listed["credit_limit"] == "7500.00" and listed["payment_terms"] == "NET30"
        bad = api.put("customer", "c-1", {"credit_limit": "lots", "payment_terms": "NET90"})
        assert field_errors(bad) == {"credit_limit": "invalid", "payment_terms": "invalid"}
        nobody = api.put("customer", "c-9", {"credit_limit": "100.00"})
        assert field_errors(nobody) == {"external_id": "reference_not_found"}


# ---- listing ----------------------------------------------------------------------------------
def test_the_list_pages_by_offset_and_filters_by_updated_since(erp, api):
    for number in range(5):
        api.put("customer", f"c-{number}", {**CUSTOMER, "email": f"c{number}@example.com"})
    start = erp.clock.now()
    erp.clock.advance(timedelta(hours=1))
    api.put("customer", "c-3", {**CUSTOMER, "email": "c3@example.com", "phone": "1"})

    pages = [api.list("customer", limit=2, offset=offset).json() for offset in (0, 2, 4)]
    assert [page["total"] for page in pages] == [5, 5, 5]
    listed = [record["external_id"] for page in pages for record in page["records"]]
    assert listed == ["c-0", "c-1", "c-2", "c-4", "c-3"]  # oldest change first
    assert pages[2]["records"][0]["updated_at"] == (start + timedelta(hours=1)).isoformat()

    since = (start + timedelta(minutes=30)).isoformat()
    changed = api.list("customer", updated_since=since).json()
    assert changed["total"] == 1 and changed["records"][0]["version"] == 2
    assert field_errors(api.list("customer", updated_since="last tuesday")) == {
        "updated_since": "invalid"
    }
    assert field_errors(api.list("customer", limit=0)) == {"limit": "invalid"}


# ---- rate limit, faults, outages ---------------------------------------------------------------------
def test_the_rate_limit_is_per_client_and_answers_429_with_retry_after():
    limit = ErpRateLimit(bucket_size=2, leak_per_second=0.0, retry_after=1.5)
    with erp_with(rate_limit=limit) as erp:
        first, second = Api(erp), Api(erp)  # two tokens, one client: one bucket
        assert first.list("customer").status_code == 200
        assert second.list("customer").status_code == 200
        refused = first.list("customer")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1.5"
        assert refused.json()["error"] == "rate_limited"


def test_server_error_faults_cover_the_numbered_requests_then_stop():
    with erp_with(
        faults=(Fault(kind="server_error", after_requests=1, count=2, status=502),)
    ) as erp:
        api = Api(erp)
        statuses = [api.put("customer", "c-1", CUSTOMER).status_code for _ in range(4)]
        assert statuses == [201, 502, 502, 200]
        stats = erp.stats()
        assert stats["faults_fired"] == {"server_error": 2}
        assert stats["by_route"]["put_record"] == {"201": 1, "502": 2, "200": 1}
        assert stats["documents"]["customer"] == 1


def test_a_slow_answer_times_a_client_out_but_the_write_still_lands():
    with erp_with(faults=(Fault(kind="slow", after_requests=0, delay_seconds=0.5),)) as erp:
        api = Api(erp)
        with pytest.raises(requests.ReadTimeout):
            requests.put(
                f"{erp.url}/api/v1/records/customer/eid:c-1",
                json=CUSTOMER,
                headers=api.headers(),
                timeout=(5, 0.1),
            )
        # The server finishes the request the client gave up on: the write it carried lands.
        assert erp.erp.wait_idle()
        assert erp.stats()["writes"]["creates"] == 1
        assert erp.stats()["faults_fired"] == {"slow": 1}
        assert api.put("customer", "c-1", CUSTOMER).json()["created"] is False
        assert erp.stats()["documents"]["customer"] == 1


def test_a_down_fault_answers_503_for_its_requests():
    with erp_with(faults=(Fault(kind="down", after_requests=0, count=2),)) as erp:
        api = Api(erp)
        assert [api.list("customer").status_code for _ in range(3)] == [503, 503, 200]


def test_set_down_refuses_everything_but_the_stats_until_set_back(erp, api):
    erp.erp.set_down(True)
    assert api.put("customer", "c-1", CUSTOMER).status_code == 503
    assert token_for(erp).status_code == 503
    assert requests.get(f"{erp.url}/nowhere", timeout=5).status_code == 503
    stats = requests.get(f"{erp.url}/_sandbox/erp/stats", timeout=5)
    assert stats.status_code == 200 and stats.json()["down"] is True
    assert stats.json()["documents"]["customer"] == 0
    erp.erp.set_down(False)
    assert api.put("customer", "c-1", CUSTOMER).status_code == 201
    assert erp.erp.documents("customer")[0]["external_id"] == "c-1"


def test_forbidden_writes_are_refused_403_while_tokens_and_reads_answer_until_set_back(erp, api):
    other = {**CUSTOMER, "email": "grace@example.com"}  # a second customer needs its own email
    assert api.put("customer", "c-1", CUSTOMER).status_code == 201
    erp.erp.set_writes_forbidden(True)
    refused = api.put("customer", "c-2", other)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    batch = api.batch("customer", {"records": [{"external_id": "c-3", "record": other}]})
    assert batch.status_code == 403
    assert token_for(erp).status_code == 200
    assert api.get("customer", "c-1").status_code == 200
    assert api.list("customer").json()["total"] == 1
    stats = erp.stats()
    assert stats["writes_forbidden"] is True
    assert stats["documents"]["customer"] == 1 and stats["writes"]["creates"] == 1
    erp.erp.set_writes_forbidden(False)
    assert api.put("customer", "c-2", other).status_code == 201
    assert erp.stats()["documents"]["customer"] == 2


# ---- configuration -------------------------------------------------------------------------------
def parse(text: str):
    return parse_erp(_Reader(Path("scenario.yaml")), yaml.safe_load(text))


def test_the_erp_section_parses_into_a_config():
    config = parse(
        """
        client_id: erp-client
        client_secret: s3cret
        token_ttl_seconds: 90
        rate_limit: {bucket_size: 5, leak_per_second: 1, retry_after: 2}
        customers:
          - {external_id: c-1, name: Ada, email: ada@example.com, credit_limit: "100.50", payment_terms: NET15}
        faults:
          - {kind: server_error, after_requests: 3, count: 2, status: 504}
          - {kind: slow, after_requests: 1, delay_seconds: 2}
          - {kind: expire_tokens, after_requests: 10}
          - {kind: down, after_requests: 20, count: 5}
        """
    )
    assert (config.client_id, config.client_secret, config.token_ttl_seconds) == (
        "erp-client",
        "s3cret",
        90.0,
    )
    assert config.rate_limit == ErpRateLimit(5, 1.0, 2.0)
    assert config.customers[0].credit_limit is not None
    assert str(config.customers[0].credit_limit) == "100.50"
    assert [(f.kind, f.after_requests, f.count) for f in config.faults] == [
        ("server_error", 3, 2),
        ("slow", 1, 1),
        ("expire_tokens", 10, 1),
        ("down", 20, 5),
    ]
    assert config.faults[0].status == 504 and config.faults[1].delay_seconds == 2.0
    assert parse("{}") == ErpConfig()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("tokens_ttl: 5", "erp.tokens_ttl: unknown key"),
        ("token_ttl_seconds: 0", "erp.token_ttl_seconds: must be > 0"),
        ("rate_limit: {bucket: 3}", "erp.rate_limit.bucket: unknown key"),
        ("customers: [{external_id: c-1, name: Ada}]", "erp.customers[0].email: required"),
        (
            "customers: [{external_id: c-1, name: Ada, email: nope}]",
            "erp.customers[0].email: must be a valid email address",
        ),
        (
            "customers: [{external_id: c-1, name: A, email: a@b.co, billing_address: {country: US}}]",
            "erp.customers[0].billing_address.postal_code: required",
        ),
        (
            "customers: [{external_id: c-1, name: A, email: a@b.co, payment_terms: NET7}]",
            "erp.customers[0].payment_terms: expected one of",
        ),
        (
            "customers: [{external_id: c-1, name: A, email: a@b.co}, {external_id: c-1, name: B, email: b@b.co}]",
            "erp.customers[1].external_id: 'c-1' is already used by erp.customers[0]",
        ),
        ("faults: [{kind: explode, after_requests: 1}]", "erp.faults[0].kind: unknown fault kind"),
        ("faults: [{kind: slow, after_requests: 1}]", "erp.faults[0].delay_seconds: required"),
        (
            "faults: [{kind: expire_tokens, after_requests: 1, count: 3}]",
            "erp.faults[0].count: unknown key",
        ),
    ],
)
def test_a_bad_erp_section_fails_with_its_path(text, where):
    with pytest.raises(ScenarioError) as error:
        parse(text)
    assert f"scenario.yaml: {where}" in str(error.value)


# ---- the batch endpoint -------------------------------------------------------------------------
def test_a_batch_answers_each_record_as_its_own_put_would(erp, api):
    """Created, refused by validation, a missing reference, a conflict: one entry each, in order."""
    api.put("customer", "c-1", CUSTOMER)
    answer = api.batch(
        "sales_order",
        {
            "records": [
                {"external_id": "o-1", "idempotency_key": "k-1", "record": ORDER},
                {"external_id": "o-2", "record": {**ORDER, "currency": "usd"}},
                {"external_id": "o-3", "record": {**ORDER, "customer_eid": "nobody"}},
            ]
        },
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["external_id"], r["status"]) for r in results] == [
        ("o-1", 201),
        ("o-2", 400),
        ("o-3", 400),
    ]
    assert results[0]["body"]["created"] is True and results[0]["body"]["version"] == 1
    assert {f["field"] for f in results[1]["body"]["fields"]} == {"currency"}
    assert results[2]["body"]["fields"][0]["code"] == "reference_not_found"
    # The same as the single PUT: the record is there once, and its key replays.
    assert api.get("sales_order", "o-1").json()["version"] == 1
    replay = api.put("sales_order", "o-1", ORDER, key="k-1")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["version"] == 1
    clash = api.batch(
        "customer",
        {"records": [{"external_id": "c-2", "record": {**CUSTOMER, "email": "ADA@example.com"}}]},
    )
    assert clash.json()["results"][0]["status"] == 409
    assert erp.stats()["documents"] == {
        "customer": 1,
        "sales_order": 1,
        "invoice": 0,
        "credit_note": 0,
        "payment_applied": 0,
    }


def test_a_batch_writes_its_records_in_order_and_replays_each_key(erp, api):
    api.put("customer", "c-1", CUSTOMER)
    first = {"external_id": "o-1", "idempotency_key": "k-1", "record": ORDER}
    second = {
        "external_id": "o-1",
        "idempotency_key": "k-2",
        "record": {**ORDER, "shipping": "6.00", "total": "33.00"},
    }
    results = api.batch("sales_order", {"records": [first, second]}).json()["results"]
    assert [r["body"]["version"] for r in results] == [1, 2]  # two writes of one record, in order
    again = api.batch("sales_order", {"records": [first, second]}).json()["results"]
    assert [r.get("idempotent_replayed") for r in again] == [True, True]
    assert api.get("sales_order", "o-1").json()["record"]["shipping"] == "6.00"
    assert erp.stats()["writes"]["creates"] == 2  # the customer and the order, nothing doubled


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": "o-1"}, "records"),
        ({"records": []}, "records"),
        ({"records": [{"external_id": f"o-{n}", "record": ORDER} for n in range(101)]}, "records"),
        ({"records": [{"external_id": "", "record": ORDER}]}, "records[0].external_id"),
        ({"records": [{"external_id": "o-1", "record": ORDER, "extra": 1}]}, "records[0]"),
        (
            {"records": [{"external_id": "o-1", "idempotency_key": 7, "record": ORDER}]},
            "records[0].idempotency_key",
        ),
    ],
)
def test_a_malformed_batch_is_refused_whole_and_writes_nothing(erp, api, body, field):
    api.put("customer", "c-1", CUSTOMER)
    answer = api.batch("sales_order", body)
    assert field in field_errors(answer)
    assert answer.json()["message"] == "the batch is malformed; nothing was written"
    assert erp.stats()["documents"]["sales_order"] == 0


def test_a_batch_is_one_request_for_the_rate_limit_and_the_faults():
    with erp_with(
        faults=(Fault(kind="server_error", after_requests=1, count=1, status=503),)
    ) as erp:
        api = Api(erp)
        entries = [
            {"external_id": f"c-{n}", "record": {**CUSTOMER, "email": f"c{n}@example.com"}}
            for n in range(50)
        ]
        assert api.batch("customer", {"records": entries}).status_code == 200
        assert api.batch("customer", {"records": entries}).status_code == 503  # request 2
        assert erp.stats()["api_requests"] == 2
        assert erp.stats()["documents"]["customer"] == 50
