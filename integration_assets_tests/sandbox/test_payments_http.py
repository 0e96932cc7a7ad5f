"""The payments sandbox over real HTTP on 127.0.0.1: Stripe's protocol, the shared clock, real shapes."""

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from integration_assets.local_stack import SandboxProcess, start_sandbox
from integration_assets.sandbox import SCENARIOS_DIR, load_scenario, start_sandbox_systems
from integration_assets.sandbox.payments_app import mask_key
from integration_assets.sandbox.scenario import Fault

PAYMENTS = load_scenario(SCENARIOS_DIR / "payments.yaml")
KEY = PAYMENTS.payments.secret_key
RESOURCES = ("charges", "refunds", "balance_transactions", "disputes", "payouts")
STRIPE_FIXTURES = (
    Path(__file__).resolve().parents[2]
    / "integration_assets"
    / "sandbox"
    / "fixtures"
    / "stripe"
    / "fixtures3.json"
)
LATE = PAYMENTS.clock.start + timedelta(days=6)


@pytest.fixture(scope="module")
def systems():
    with start_sandbox_systems(PAYMENTS) as running:
        yield running


@pytest.fixture
def api(systems):
    """A session with the key, the clock at LATE (everything has happened) for each test."""
    systems.clock.set(LATE)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {KEY}"

    def get(path, **params):
        return session.get(f"{systems.payments.url}{path}", params=params, timeout=10)

    yield get
    session.close()


def walk(api, resource, limit, **params):
    """Follow starting_after to the end; return the ids in order and the number of pages."""
    ids, pages, cursor = [], 0, None
    while True:
        query = dict(params, limit=limit)
        if cursor:
            query["starting_after"] = cursor
        response = api(f"/v1/{resource}", **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "list" and body["url"] == f"/v1/{resource}"
        assert len(body["data"]) <= limit
        ids += [obj["id"] for obj in body["data"]]
        pages += 1
        if not body["has_more"]:
            return ids, pages
        cursor = body["data"][-1]["id"]


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("limit", [1, 3, 100])
def test_pagination_visits_every_object_once_newest_first(api, systems, resource, limit):
    expected = systems.payments.ledger.snapshot(LATE).lists[resource]
    assert expected, resource
    ids, pages = walk(api, resource, limit)
    assert ids == [obj["id"] for obj in expected]
    assert len(ids) == len(set(ids))
    assert pages == max(1, -(-len(expected) // limit))
    created = [systems.payments.ledger.snapshot(LATE).by_id[resource][i]["created"] for i in ids]
    assert created == sorted(created, reverse=True)


def test_default_limit_is_ten(api):
    body = api("/v1/balance_transactions").json()
    assert len(body["data"]) == 10 and body["has_more"] is True


def test_ending_before_pages_backwards(api):
    everything, _ = walk(api, "charges", 100)
    cursor = everything[7]
    body = api("/v1/charges", limit=3, ending_before=cursor).json()
    assert [c["id"] for c in body["data"]] == everything[4:7]
    assert body["has_more"] is True
    first = api("/v1/charges", limit=3, ending_before=everything[2]).json()
    assert [c["id"] for c in first["data"]] == everything[0:2]
    assert first["has_more"] is False


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_limit_out_of_bounds_is_400(api, limit):
    response = api("/v1/charges", limit=limit)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "limit"


def test_cursors_are_mutually_exclusive_and_must_exist(api):
    ids, _ = walk(api, "charges", 100)
    both = api("/v1/charges", starting_after=ids[0], ending_before=ids[1])
    assert both.status_code == 400 and "ending_before" in both.json()["error"]["message"]
    missing = api("/v1/charges", starting_after="ch_nope")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "resource_missing"
    unknown = api("/v1/charges", colour="blue")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Received unknown parameter: colour"


def test_created_filters(api, systems):
    objects = systems.payments.ledger.snapshot(LATE).lists["balance_transactions"]
    middle = sorted({o["created"] for o in objects})[len(objects) // 3]
    for op, keep in {
        "gte": lambda c: c >= middle,
        "gt": lambda c: c > middle,
        "lte": lambda c: c <= middle,
        "lt": lambda c: c < middle,
    }.items():
        ids, _ = walk(api, "balance_transactions", 100, **{f"created[{op}]": middle})
        assert ids == [o["id"] for o in objects if keep(o["created"])], op
    both, _ = walk(
        api, "balance_transactions", 7, **{"created[gte]": middle, "created[lt]": middle + 86400}
    )
    assert both == [o["id"] for o in objects if middle <= o["created"] < middle + 86400]
    bad = api("/v1/charges", **{"created[gte]": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "created[gte]"


def test_retrieve_and_404_shape(api, systems):
    charge = systems.payments.ledger.snapshot(LATE).lists["charges"][0]
    response = api(f"/v1/charges/{charge['id']}")
    assert response.status_code == 200 and response.json() == charge
    assert response.headers["Request-Id"].startswith("req_")
    missing = api("/v1/charges/ch_x")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such charge: 'ch_x'",
            "param": "id",
        }
    }
    assert api("/v1/payouts/po_x").json()["error"]["message"] == "No such payout: 'po_x'"
    assert api("/v1/customers").status_code == 404


def test_objects_do_not_exist_before_their_time(api, systems):
    systems.clock.set(PAYMENTS.clock.start)
    assert api("/v1/charges").json()["data"] == []
    systems.clock.set(LATE)
    assert api("/v1/charges").json()["data"]


def test_wrong_key_is_401_and_masked(systems):
    wrong = "sk_test_thisIsNotTheRightKey9876"
    response = requests.get(
        f"{systems.payments.url}/v1/charges",
        headers={"Authorization": f"Bearer {wrong}"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_test_****9876",
        }
    }
    assert wrong not in response.text and KEY not in response.text
    assert mask_key(KEY) == "sk_test_****4242"
    none = requests.get(f"{systems.payments.url}/v1/charges", timeout=10)
    assert none.status_code == 401 and "did not provide an API key" in none.text
    basic = requests.get(f"{systems.payments.url}/v1/charges", auth=(KEY, ""), timeout=10)
    assert basic.status_code == 200


def test_balance_transactions_of_a_payout_sum_to_it(api, systems):
    payouts, _ = walk(api, "payouts", 100)
    assert len(payouts) >= 3
    for payout_id in payouts:
        payout = api(f"/v1/payouts/{payout_id}").json()
        members = []
        cursor = None
        while True:
            params = {"payout": payout_id, "limit": 5}
            if cursor:
                params["starting_after"] = cursor
            body = api("/v1/balance_transactions", **params).json()
            members += body["data"]
            if not body["has_more"]:
                break
            cursor = body["data"][-1]["id"]
        assert members
        assert sum(t["net"] for t in members) == payout["amount"]
        assert payout["balance_transaction"] not in {t["id"] for t in members}
    assert api("/v1/balance_transactions", payout="po_missing").status_code == 400
    refunds_only = api("/v1/balance_transactions", type="refund", limit=100).json()["data"]
    assert refunds_only and {t["type"] for t in refunds_only} == {"refund"}


def test_refunds_filter_by_charge(api, systems):
    ledger = systems.payments.ledger
    charge_id = ledger.charges_by_order[ledger.order_ids_by_label["edited_down"]][0].id
    body = api("/v1/refunds", charge=charge_id).json()
    assert [r["charge"] for r in body["data"]] == [charge_id]
    assert body["data"][0]["amount"] == 8000


def test_one_clock_moves_every_system(systems):
    systems.clock.set(PAYMENTS.clock.start)
    before = requests.get(f"{systems.payments.url}/_sandbox/clock", timeout=10).json()
    moved = requests.post(
        f"{systems.storefront.url}/_sandbox/clock", json={"advance": "1d"}, timeout=10
    ).json()
    after = requests.get(f"{systems.payments.url}/_sandbox/clock", timeout=10).json()
    assert after["now_utc"] == moved["now_utc"] != before["now_utc"]
    assert after["now_unix"] - before["now_unix"] == 86400
    # ... and the other way round.
    requests.post(f"{systems.payments.url}/_sandbox/clock", json={"advance": "2h"}, timeout=10)
    storefront_now = requests.get(f"{systems.storefront.url}/_sandbox/clock", timeout=10).json()
    assert storefront_now["now_utc"] == (PAYMENTS.clock.start + timedelta(hours=26)).isoformat()
    # What payments serves follows: a dispute opened at +1d is visible now.
    disputes = requests.get(
        f"{systems.payments.url}/v1/disputes",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).json()["data"]
    assert {d["status"] for d in disputes} == {"needs_response"}
    stats = requests.get(f"{systems.payments.url}/_sandbox/stats", timeout=10).json()
    assert stats["by_route"]["disputes"]["200"] >= 1


def test_rate_limit_fault_answers_429_in_stripes_shape():
    fault = Fault(kind="payments_rate_limit", after_requests=1, count=2)
    scenario = dataclasses.replace(
        PAYMENTS, payments=dataclasses.replace(PAYMENTS.payments, faults=(fault,))
    )
    with start_sandbox_systems(scenario) as running:
        headers = {"Authorization": f"Bearer {KEY}"}
        statuses = [
            requests.get(f"{running.payments.url}/v1/charges", headers=headers, timeout=10)
            for _ in range(4)
        ]
        assert [r.status_code for r in statuses] == [200, 429, 429, 200]
        error = statuses[1].json()["error"]
        assert error["type"] == "rate_limit_error" and "Retry-After" not in statuses[1].headers
        assert running.payments.stats()["faults_fired"] == {"payments_rate_limit": 2}
        # The storefront is not affected by a payments fault.
        assert running.storefront.stats()["faults_fired"] == {}


def _key_paths(value, prefix=""):
    """Every dotted key path in a JSON object (lists: the keys of their dict items)."""
    paths = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= _key_paths(inner, f"{path}.")
    elif isinstance(value, list):
        for item in value:
            paths |= _key_paths(item, f"{prefix}[].")
    return paths


@pytest.mark.parametrize(
    ("resource", "object_name"),
    [
        ("charges", "charge"),
        ("refunds", "refund"),
        ("balance_transactions", "balance_transaction"),
        ("disputes", "dispute"),
        ("payouts", "payout"),
        ("events", "event"),
    ],
)
def test_every_emitted_key_exists_in_the_real_stripe_mock_object(api, resource, object_name):
    real = json.loads(STRIPE_FIXTURES.read_text())["resources"][object_name]
    real_paths = _key_paths(real)
    # Lists the fixture leaves empty (fee_details, balance_transactions) cannot say what their
    # items hold; metadata is free-form; an event's data.object is another object (checked as
    # itself). Everything else must be a real key at its real place.
    free = ("metadata.", "fee_details.[].", "balance_transactions.[].", "data.object.")
    body = api(f"/v1/{resource}", limit=100).json()
    assert body["data"]
    for obj in body["data"]:
        assert obj["object"] == real["object"]
        emitted = {p for p in _key_paths(obj) if not p.startswith(free)}
        assert emitted <= real_paths, sorted(emitted - real_paths)
        for key, value in obj.items():
            if isinstance(real.get(key), int) and not isinstance(real.get(key), bool):
                assert isinstance(value, int), key  # integer minor units and unix times


def test_balance_transaction_items_inside_disputes_are_real_balance_transactions(api):
    real = json.loads(STRIPE_FIXTURES.read_text())["resources"]["balance_transaction"]
    for dispute in api("/v1/disputes", limit=100).json()["data"]:
        for inner in dispute["balance_transactions"]:
            assert set(inner) <= set(real)


def test_ready_file_and_environment_name_the_payments_system(tmp_path):
    from integration_assets.sandbox.server import _write_atomically

    with start_sandbox_systems(PAYMENTS) as running:
        ready = tmp_path / "ready.json"
        _write_atomically(ready, json.dumps(running.systems()))
        systems = json.loads(ready.read_text())
    assert systems["payments"] == {"url": running.payments.url, "secret_key": KEY}
    assert systems["storefront"]["url"] == running.storefront.url
    environment = SandboxProcess(process=None, systems=systems).environment()
    assert environment["PAYMENTS_URL"] == running.payments.url
    assert environment["PAYMENTS_SECRET_KEY"] == KEY
    assert environment["STOREFRONT_URL"] == running.storefront.url
    without = SandboxProcess(process=None, systems={"storefront": systems["storefront"]})
    assert "PAYMENTS_URL" not in without.environment()


def test_serve_forever_process_serves_payments_on_the_shared_clock():
    with start_sandbox(SCENARIOS_DIR / "payments.yaml") as process:
        environment = process.environment()
        headers = {"Authorization": f"Bearer {environment['PAYMENTS_SECRET_KEY']}"}
        url = environment["PAYMENTS_URL"]
        assert requests.get(f"{url}/v1/charges", headers=headers, timeout=10).json()["data"] == []
        process.advance_clock("1d")  # through the storefront's URL
        charges = requests.get(f"{url}/v1/charges", headers=headers, timeout=10).json()
        assert charges["data"] and charges["has_more"] is True


def test_charge_events_carry_each_charge_as_it_stood_then(api):
    refunded = walk_objects(api, "events", **{"types[]": ["charge.refunded"]})
    succeeded = walk_objects(api, "events", type="charge.succeeded")
    assert refunded and succeeded
    assert {e["type"] for e in walk_objects(api, "events", type="charge.*")} == {
        "charge.succeeded",
        "charge.refunded",
    }
    for event in succeeded:
        charge = event["data"]["object"]
        assert (charge["object"], charge["amount_refunded"]) == ("charge", 0)
        assert event["created"] == charge["created"]
    # Refund by refund, the amount refunded grows; the newest event shows the charge as it is now.
    newest = {}
    for event in sorted(refunded, key=lambda e: e["created"]):
        charge = event["data"]["object"]
        previous = newest.get(charge["id"], {"amount_refunded": 0})["amount_refunded"]
        assert previous < charge["amount_refunded"] <= charge["amount"]
        newest[charge["id"]] = charge
    for charge_id, charge in newest.items():
        assert (
            api(f"/v1/charges/{charge_id}").json()["amount_refunded"] == charge["amount_refunded"]
        )


def test_event_filters_are_exclusive(api):
    response = api("/v1/events", type="charge.*", **{"types[]": ["charge.refunded"]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "type"


def walk_objects(api, resource, **params):
    objects, cursor = [], None
    while True:
        query = dict(params, limit=100)
        if cursor:
            query["starting_after"] = cursor
        body = api(f"/v1/{resource}", **query).json()
        objects += body["data"]
        if not body["has_more"]:
            return objects
        cursor = body["data"][-1]["id"]
