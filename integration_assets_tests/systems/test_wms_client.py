"""WmsClient against the WMS reservations sandbox over real HTTP: idempotent puts, versions, outcomes."""

from pathlib import Path

import pytest

from integration_assets.sandbox.scenario import _Reader
from integration_assets.sandbox.wms_api import parse_wms_api, start_wms_api
from integration_assets.systems.bulk import RecordWrite
from integration_assets.systems.wms import WmsClient
from integration_assets.systems.write_outcome import TargetAuthError, TargetError

KEY = "wms-client-key-5150"


def config(**overrides):
    raw = {"api_key": KEY, "stock": {"MUG-1": 5, "TEE-1": 10}, **overrides}
    return parse_wms_api(_Reader(Path("scenario.yaml")), raw)


@pytest.fixture
def wms_factory():
    started = []

    def start(**overrides):
        running = start_wms_api(config(**overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def wms(wms_factory):
    return wms_factory()


def client_for(wms, **overrides):
    settings = {
        "base_url": wms.url,
        "api_key": KEY,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        **overrides,
    }
    return WmsClient(**settings)


@pytest.fixture
def client(wms):
    return client_for(wms)


def reservation(order_id="1001", status="reserved", mugs=2, tees=0):
    lines = [{"sku": "MUG-1", "quantity": mugs}]
    if tees:
        lines.append({"sku": "TEE-1", "quantity": tees})
    return {"order_id": order_id, "status": status, "lines": lines}


def test_the_same_body_twice_is_one_reservation_and_one_version(wms, client):
    first = client.put_reservation("R-1", reservation(), idempotency_key="R-1:abc")
    again = client.put_reservation("R-1", reservation(), idempotency_key="R-1:abc")

    assert (first.outcome, first.http_status, first.created) == ("delivered", 201, True)
    assert first.target_record_id == "R-1"
    assert (again.outcome, again.http_status, again.created) == ("delivered", 200, False)
    assert again.message == "stored reservation version 1"
    assert wms.stats()["reservations"] == 1 and wms.stats()["versions_written"] == 1


def test_an_edit_is_version_two(client):
    client.put_reservation("R-1", reservation(mugs=2), "k1")
    edited = client.put_reservation("R-1", reservation(mugs=3, tees=1), "k2")
    assert edited.outcome == "delivered" and edited.message == "stored reservation version 2"
    stored = client.get_reservation("R-1")
    assert stored["version"] == 2
    assert stored["lines"] == [{"sku": "MUG-1", "quantity": 3}, {"sku": "TEE-1", "quantity": 1}]


def test_release_is_stored_as_released(client):
    client.put_reservation("R-1", reservation(mugs=5), "k1")
    released = client.put_reservation("R-1", reservation(status="released", mugs=5), "k2")
    assert released.outcome == "delivered"
    assert client.get_reservation("R-1")["status"] == "released"
    # The released units are free again for the next order.
    assert client.put_reservation("R-2", reservation("1002", mugs=5), "k3").message == (
        "created reservation version 1"
    )


def test_a_backorder_is_delivered_and_named(client):
    client.put_reservation("R-1", reservation("1001", mugs=3), "k1")
    short = client.put_reservation("R-2", reservation("1002", mugs=4), "k2")
    assert short.outcome == "delivered"
    assert short.message == "created reservation version 1; backordered MUG-1 x2"
    assert client.get_reservation("R-2")["backordered"] == [{"sku": "MUG-1", "quantity": 2}]


def test_an_unknown_sku_is_rejected_with_the_wms_words_and_nothing_stored(wms, client):
    body = {"order_id": "1001", "status": "reserved", "lines": [{"sku": "NOPE", "quantity": 1}]}
    outcome = client.put_reservation("R-9", body, "k")
    assert (outcome.outcome, outcome.error_class, outcome.http_status) == (
        "rejected",
        "validation",
        400,
    )
    assert outcome.message == "lines[0].sku: unknown sku NOPE"
    assert outcome.retryable is False
    assert client.get_reservation("R-9") is None
    assert wms.stats()["reservations"] == 0


def test_moving_a_reservation_to_another_order_is_a_conflict(client):
    client.put_reservation("R-1", reservation("1001"), "k1")
    outcome = client.put_reservation("R-1", reservation("2002"), "k2")
    assert (outcome.outcome, outcome.error_class) == ("conflict", "conflict")
    assert "belongs to order 1001" in outcome.message


def test_a_wrong_key_fails_at_once_without_the_key_in_the_message(wms):
    client = client_for(wms, api_key="wrong-key-42")
    with pytest.raises(TargetAuthError) as error:
        client.put_reservation("R-1", reservation(), "k")
    assert "WMS_API_KEY" in str(error.value)
    assert "wrong-key-42" not in str(error.value) and KEY not in str(error.value)
    assert wms.stats()["by_route"] == {"reservation_put": {"401": 1}}


def test_server_errors_and_rate_limits_are_retried_then_delivered(wms_factory):
    wms = wms_factory(
        faults=[
            {"kind": "server_error", "after_requests": 0, "status": 503},
            {"kind": "rate_limit_burst", "after_requests": 1, "retry_after": 0},
        ]
    )
    client = client_for(wms)
    outcome = client.put_reservation("R-1", reservation(), "k")
    assert (outcome.outcome, outcome.created) == ("delivered", True)
    assert client.stats.retries_server_error == 1 and client.stats.retries_rate_limited == 1
    assert wms.stats()["reservations"] == 1


def test_faults_outlasting_the_retries_are_unavailable(wms_factory):
    wms = wms_factory(faults=[{"kind": "server_error", "after_requests": 0, "count": 9}])
    outcome = client_for(wms, max_retries=2).put_reservation("R-1", reservation(), "k")
    assert (outcome.outcome, outcome.error_class, outcome.http_status) == (
        "unavailable",
        "server_error",
        503,
    )
    assert wms.stats()["api_by_status"] == {"503": 3}


# ---- bulk writes through the batch endpoint ----------------------------------------------------
def test_a_bulk_put_reads_each_reservations_outcome_as_its_own_put_would(wms, client):
    client.put_reservation("R-2", reservation("2002", mugs=1), "k0")
    writes = [
        RecordWrite("R-1", reservation("1001", mugs=4), "k1"),  # 4 of the 5 left: 1 held by R-2
        RecordWrite("R-2", reservation("9999"), "k2"),  # R-2 belongs to order 2002
        RecordWrite(
            "R-3",
            {"order_id": "3", "status": "reserved", "lines": [{"sku": "NOPE", "quantity": 1}]},
            "k3",
        ),
        RecordWrite("R-4", reservation("1004", mugs=2), "k4"),  # nothing left: backordered
    ]
    outcomes = client.put_reservations(writes)
    assert [(o.outcome, o.http_status) for o in outcomes] == [
        ("delivered", 201),
        ("conflict", 409),
        ("rejected", 400),
        ("delivered", 201),
    ]
    assert "belongs to order 2002" in outcomes[1].message
    assert outcomes[2].message == "lines[0].sku: unknown sku NOPE"
    assert outcomes[3].message == "created reservation version 1; backordered MUG-1 x2"
    assert outcomes[0].target_record_id == "R-1"
    assert wms.stats()["by_route"]["reservations_batch"] == {"200": 1}


def test_a_bulk_put_outlasting_the_retries_is_unavailable_for_every_reservation(wms_factory):
    wms = wms_factory(faults=[{"kind": "server_error", "after_requests": 0, "count": 9}])
    writes = [RecordWrite(f"R-{n}", reservation(str(n)), f"k{n}") for n in range(3)]
    outcomes = client_for(wms, max_retries=1).put_reservations(writes)
    assert {(o.outcome, o.error_class) for o in outcomes} == {("unavailable", "server_error")}
    assert len(outcomes) == 3 and wms.stats()["reservations"] == 0
    assert wms.stats()["api_by_status"] == {"503": 2}  # one request and its retry, for all three


def test_a_wms_without_the_batch_endpoint_fails_the_run_with_the_way_out(wms):
    client = client_for(wms, base_url=f"{wms.url}/elsewhere")
    with pytest.raises(TargetError, match="batch_size to 1"):
        client.put_reservations([RecordWrite("R-1", reservation(), "k")])
