"""The WMS reservations API sandbox over real HTTP on 127.0.0.1: idempotent upserts, versions, backorders."""

from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.sandbox.scenario import ScenarioError, _Reader
from integration_assets.sandbox.wms_api import parse_wms_api, start_wms_api

KEY = "wms_test_key_123"
CONFIG_YAML = {
    "api_key": KEY,
    "stock": {"MUG-1": 5, "TEE-1": 10},
    "skus": ["POSTER-1"],
}


def config(**overrides):
    return parse_wms_api(_Reader(Path("scenario.yaml")), {**CONFIG_YAML, **overrides})


@pytest.fixture
def wms():
    with start_wms_api(config()) as running:
        yield running


@pytest.fixture
def put(wms):
    session = requests.Session()
    session.headers["X-Api-Key"] = KEY

    def send(reservation_id, body):
        return session.put(f"{wms.url}/api/v1/reservations/{reservation_id}", json=body, timeout=10)

    yield send
    session.close()


def get(wms, path, key=KEY):
    return requests.get(f"{wms.url}{path}", headers={"X-Api-Key": key}, timeout=10)


def body(order_id="1001", status="reserved", **quantities):
    lines = [{"sku": sku.replace("_", "-"), "quantity": q} for sku, q in quantities.items()]
    return {"order_id": order_id, "status": status, "lines": lines}


def test_same_body_twice_is_one_reservation_and_one_version(wms, put):
    first = put("R-1", body(MUG_1=2))
    again = put("R-1", body(MUG_1=2))

    assert first.status_code == 201
    assert first.json()["version"] == 1 and first.json()["backordered"] == []
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert len(wms.reservations()) == 1
    stats = get(wms, "/_sandbox/wms/stats", key="").json()
    assert stats["reservations"] == 1 and stats["versions_written"] == 1
    assert stats["api_by_status"] == {"201": 1, "200": 1}


def test_an_edit_is_version_two_and_get_shows_it(wms, put):
    put("R-1", body(MUG_1=2))
    edited = put("R-1", body(MUG_1=3, TEE_1=1))

    assert edited.status_code == 200
    assert edited.json()["version"] == 2
    shown = get(wms, "/api/v1/reservations/R-1")
    assert shown.status_code == 200
    assert shown.json()["lines"] == [
        {"sku": "MUG-1", "quantity": 3},
        {"sku": "TEE-1", "quantity": 1},
    ]
    assert shown.json()["version"] == 2


def test_short_stock_is_backordered_not_refused(wms, put):
    first = put("R-1", body("1001", MUG_1=3))
    second = put("R-2", body("1002", MUG_1=4, TEE_1=1))

    assert first.json()["backordered"] == []
    assert second.status_code == 201
    assert second.json()["backordered"] == [{"sku": "MUG-1", "quantity": 2}]
    # A known SKU without a stock figure has nothing on hand.
    poster = put("R-3", body("1003", POSTER_1=1))
    assert poster.status_code == 201
    assert poster.json()["backordered"] == [{"sku": "POSTER-1", "quantity": 1}]


def test_release_frees_the_stock_for_the_next_reservation(wms, put):
    put("R-1", body("1001", MUG_1=5))
    released = put("R-1", body("1001", status="released", MUG_1=5))
    after = put("R-2", body("1002", MUG_1=5))

    assert released.status_code == 200
    assert released.json()["status"] == "released" and released.json()["version"] == 2
    assert after.json()["backordered"] == []


def test_unknown_sku_is_rejected_with_the_line_named_and_nothing_stored(wms, put):
    refused = put("R-9", body(MUG_1=1, NOPE_9=1))

    assert refused.status_code == 400
    assert refused.json() == {
        "error": "validation_failed",
        "fields": [{"field": "lines[1].sku", "message": "unknown sku NOPE-9"}],
    }
    assert get(wms, "/api/v1/reservations/R-9").status_code == 404
    assert wms.reservations() == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"order_id": "1", "status": "held", "lines": []}, "status"),
        (
            {"order_id": "1", "status": "reserved", "lines": [{"sku": "MUG-1", "quantity": -1}]},
            "lines[0].quantity",
        ),
        (
            {"order_id": "1", "status": "reserved", "lines": [{"sku": "MUG-1", "quantity": True}]},
            "lines[0].quantity",
        ),
        ({"status": "reserved", "lines": []}, "order_id"),
        ({"order_id": "1", "status": "reserved", "lines": [], "extra": 1}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_malformed_bodies_name_the_field(wms, put, payload, field):
    refused = put("R-1", payload)
    assert refused.status_code == 400
    assert [entry["field"] for entry in refused.json()["fields"]] == [field]
    assert wms.reservations() == []


def test_invalid_json_is_a_400(wms):
    response = requests.put(
        f"{wms.url}/api/v1/reservations/R-1",
        data=b"{not json",
        headers={"X-Api-Key": KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["fields"][0]["field"] == "body"


def test_moving_a_reservation_to_another_order_is_a_conflict(wms, put):
    put("R-1", body("1001", MUG_1=1))
    moved = put("R-1", body("2002", MUG_1=1))
    assert moved.status_code == 409
    assert moved.json()["error"] == "conflict"
    assert wms.reservations()[0]["order_id"] == "1001"


def test_wrong_or_missing_key_is_401_and_writes_nothing(wms):
    for headers in ({"X-Api-Key": "wrong"}, {}):
        response = requests.put(
            f"{wms.url}/api/v1/reservations/R-1", json=body(MUG_1=1), headers=headers, timeout=10
        )
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized"}
    assert wms.reservations() == []


def test_list_shows_every_reservation(wms, put):
    put("R-2", body("1002", TEE_1=1))
    put("R-1", body("1001", MUG_1=1))
    listed = get(wms, "/api/v1/reservations")
    assert listed.status_code == 200
    assert [r["reservation_id"] for r in listed.json()["reservations"]] == ["R-1", "R-2"]


def test_faults_answer_by_request_number():
    faults = [
        {"kind": "server_error", "after_requests": 0, "status": 502},
        {"kind": "rate_limit_burst", "after_requests": 1, "retry_after": 3},
    ]
    with start_wms_api(config(faults=faults)) as wms:
        statuses = [get(wms, "/api/v1/reservations") for _ in range(3)]
        assert [r.status_code for r in statuses] == [502, 429, 200]
        assert statuses[1].headers["Retry-After"] == "3"
        assert wms.stats()["faults_fired"] == {"server_error": 1, "rate_limit_burst": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"stock": {"MUG-1": -1}}, "wms_api.stock.MUG-1: must be >= 0"),
        ({"api_keys": "x"}, "wms_api.api_keys: unknown key"),
        (
            {"faults": [{"kind": "meteor", "after_requests": 1}]},
            "wms_api.faults[0].kind: unknown fault kind",
        ),
        ({"faults": [{"kind": "server_error"}]}, "wms_api.faults[0].after_requests: required"),
    ],
)
def test_config_errors_name_file_and_path(raw, message):
    with pytest.raises(
        ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as error:
        parse_wms_api(_Reader(Path("scenario.yaml")), raw)
    assert str(error.value).startswith("scenario.yaml: ")


def _backorders_by_scanning(book, reservation_id, wanted, stock):
    """The rule as first written: what stock cannot cover after every OTHER reserved reservation."""
    if wanted["status"] != "reserved":
        return []
    held = {}
    for other in book.all():
        if other.reservation_id == reservation_id or other.status != "reserved":
            continue
        short = {line["sku"]: line["quantity"] for line in other.backordered}
        for line in other.lines:
            held[line["sku"]] = (
                held.get(line["sku"], 0) + line["quantity"] - short.get(line["sku"], 0)
            )
    return [
        {"sku": line["sku"], "quantity": line["quantity"] - available}
        for line in wanted["lines"]
        if line["quantity"]
        > (available := max(0, stock.get(line["sku"], 0) - held.get(line["sku"], 0)))
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3", "r4"]),
            st.sampled_from(["reserved", "released"]),
            st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(0, 6), max_size=3),
        ),
        max_size=30,
    )
)
def test_held_stock_kept_per_sku_backorders_as_a_scan_of_every_reservation(puts):
    from datetime import UTC, datetime

    from integration_assets.sandbox.wms_api import ReservationBook, WmsApiConfig

    stock = {"A": 5, "B": 2, "C": 0}
    book = ReservationBook(WmsApiConfig(stock=stock))
    for reservation_id, status, quantities in puts:
        body = {
            "order_id": f"order-{reservation_id}",
            "status": status,
            "lines": [{"sku": sku, "quantity": n} for sku, n in quantities.items()],
        }
        stored = book.get(reservation_id)
        expected = (
            stored.backordered
            if stored is not None and stored.request_body() == body
            else _backorders_by_scanning(book, reservation_id, body, stock)
        )
        _, written = book.put(reservation_id, body, datetime(2026, 12, 14, tzinfo=UTC))
        assert written.backordered == expected


# ---- the batch endpoint -------------------------------------------------------------------------
def batch(wms, records, key=KEY):
    return requests.post(
        f"{wms.url}/api/v1/reservations/batch",
        json={"records": records},
        headers={"X-Api-Key": key},
        timeout=10,
    )


def test_a_batch_answers_each_reservation_as_its_own_put_would(wms, put):
    put("R-2", body(order_id="2002", MUG_1=1))
    answer = batch(
        wms,
        [
            {"external_id": "R-1", "record": body(MUG_1=4)},
            {"external_id": "R-2", "record": body(order_id="9999", MUG_1=1)},  # another order's id
            {"external_id": "R-3", "record": body(NOPE=1)},
            {"external_id": "R-4", "record": body(order_id="1004", MUG_1=3)},  # 1 left of 5
        ],
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["external_id"], r["status"]) for r in results] == [
        ("R-1", 201),
        ("R-2", 409),
        ("R-3", 400),
        ("R-4", 201),
    ]
    # Written one after another: R-4 is short by what already hold.
    assert results[3]["body"]["backordered"] == [{"sku": "MUG-1", "quantity": 3 - (5 - 4 - 1)}]
    assert results[2]["body"]["fields"][0]["field"].startswith("lines")
    assert len(wms.reservations()) == 3
    again = batch(wms, [{"external_id": "R-1", "record": body(MUG_1=4)}]).json()["results"]
    assert again[0]["status"] == 200 and again[0]["body"]["version"] == 1  # nothing doubled


def test_a_malformed_batch_is_refused_whole(wms):
    answer = batch(wms, [{"external_id": "R-1", "record": body(MUG_1=1)}, {"record": {}}])
    assert answer.status_code == 400
    assert answer.json()["fields"] == [
        {"field": "records[1].external_id", "message": "a non-empty string"}
    ]
    assert wms.reservations() == []
    assert (
        batch(wms, [{"external_id": "R-1", "record": body(MUG_1=1)}], key="wrong").status_code
        == 401
    )
