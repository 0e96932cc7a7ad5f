"""The returns stream (pure): stages, stuck rules with their thresholds, newest RMA row wins, ages
measured to the newest source time; and the WMS return authorizations file kind."""

from datetime import UTC, datetime, timedelta

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.streams.returns import (
    Thresholds,
    build_returns,
    load_thresholds,
    newest_rma_rows,
    stage_counts,
)
from integration_assets.streams.warehouse_files import (
    FileRejection,
    ParsedFile,
    kind_of,
    read_warehouse_file,
    render_csv,
)

T0 = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def rma(rma_id="RMA-1", order_id=1, sku="WIDGET", seq=1, approved=None, shipped=None, **extra):
    return {
        "rma_id": rma_id,
        "order_id": order_id,
        "sku": sku,
        "quantity": 1,
        "requested_at": h(0),
        "approved_at": approved,
        "carrier": "UPS" if shipped else None,
        "tracking_number": "1Z" if shipped else None,
        "shipped_at": shipped,
        "seq": seq,
        **extra,
    }


def receipt(return_id="RMA-1", order_id=1, sku="WIDGET", at=None, condition="sellable"):
    return {
        "return_id": return_id,
        "order_id": order_id,
        "sku": sku,
        "quantity": 1,
        "condition": condition,
        "received_at": at,
    }


def refund(refund_id="R1", order_id=1, at=None, skus=None):
    return {"refund_id": refund_id, "order_id": order_id, "created_at": at, "skus": skus or {}}


def one(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_each_stage_is_the_furthest_reached_with_its_age():
    cases = [
        ([rma()], [], [], "requested", 0),
        ([rma(approved=h(1))], [], [], "approved", 1),
        ([rma(approved=h(1), shipped=h(3))], [], [], "in_transit", 3),
        ([rma(approved=h(1), shipped=h(3))], [receipt(at=h(6))], [], "received", 6),
        (
            [rma(approved=h(1), shipped=h(3))],
            [receipt(at=h(6))],
            [refund(at=h(8), skus={"WIDGET": 1})],
            "refunded",
            8,
        ),
    ]
    for rmas, receipts, refunds, stage, entered in cases:
        row = one(build_returns(rmas, receipts, refunds, [], as_of=h(10)))
        assert (row.stage, row.age_hours) == (stage, 10 - entered), stage
        assert row.stage_entered_at == h(entered) and row.source == "rma"
        assert row.flags == []


def test_the_provider_refund_joins_by_order_and_counts_as_refunded():
    row = one(
        build_returns(
            [rma(approved=h(1))],
            [receipt(at=h(5))],
            [],
            [{"refund_id": "re_1", "order_id": 1, "created_at": h(7)}],
            as_of=h(9),
        )
    )
    assert (row.stage, row.refunded_at, row.provider_refunded_at) == ("refunded", None, h(7))


def test_duplicate_rma_rows_the_newest_wins():
    rows = [
        rma(seq=3, approved=h(1), shipped=h(2)),
        rma(seq=1),
        rma(seq=2, approved=h(1)),
    ]
    assert newest_rma_rows(rows)["RMA-1"]["seq"] == 3
    row = one(build_returns(rows, [], [], [], as_of=h(4)))
    assert (row.stage, row.shipped_at, row.carrier) == ("in_transit", h(2), "UPS")
    # An older re-send arriving later in the list does not win over the newer file.
    row = one(build_returns([rma(seq=5), rma(seq=4, approved=h(1))], [], [], [], as_of=h(4)))
    assert row.stage == "requested"


def test_ages_are_measured_to_the_newest_source_time_not_the_wall_clock():
    inputs = ([rma(approved=h(1))], [receipt("RET-9", 2, at=h(30))], [], [])
    first = build_returns(*inputs)
    again = build_returns(*inputs)
    assert [r.age_hours for r in first] == [r.age_hours for r in again] == [29.0, 0.0]


def test_received_not_refunded_after_the_threshold():
    thresholds = Thresholds(received_not_refunded_after_hours=48)
    inputs = ([rma(approved=h(1), shipped=h(2))], [receipt(at=h(10), condition="damaged")], [], [])
    assert one(build_returns(*inputs, thresholds, as_of=h(58))).stuck == []
    row = one(build_returns(*inputs, thresholds, as_of=h(58.5)))
    assert row.stuck == ["received_not_refunded"] and "damaged" in row.flags
    # A tighter threshold from the contract flags it sooner.
    row = one(build_returns(*inputs, Thresholds(received_not_refunded_after_hours=2), as_of=h(13)))
    assert row.stuck == ["received_not_refunded"]


def test_refunded_never_received_after_the_threshold():
    thresholds = Thresholds(refunded_not_received_after_hours=72)
    inputs = ([rma(approved=h(1), shipped=h(2))], [], [refund(at=h(4), skus={"WIDGET": 1})], [])
    assert one(build_returns(*inputs, thresholds, as_of=h(76))).stuck == []
    assert one(build_returns(*inputs, thresholds, as_of=h(77))).stuck == ["refunded_never_received"]


def test_approved_not_shipped_after_the_threshold():
    thresholds = Thresholds(approved_not_shipped_after_hours=120)
    assert one(build_returns([rma(approved=h(1))], [], [], [], thresholds, h(121))).stuck == []
    assert one(build_returns([rma(approved=h(1))], [], [], [], thresholds, h(122))).stuck == [
        "approved_not_shipped"
    ]
    # Shipped back in time: not stuck however old.
    shipped = one(build_returns([rma(approved=h(1), shipped=h(2))], [], [], [], thresholds, h(500)))
    assert shipped.stuck == [] and shipped.stage == "in_transit"


def test_receipts_without_an_rma_and_refunds_without_a_return_get_their_own_rows():
    rows = build_returns(
        [],
        [receipt("RET-7", 2, "GADGET", at=h(5))],
        [
            refund("R2", 2, at=h(1), skus={None: 1}),  # lines of unknown SKU: matched by order
            refund("R3", 3, at=h(2), skus={"WIDGET": 1}),
            refund("R4", 4, at=h(3)),  # no lines at all (shipping, goodwill)
        ],
        [],
        as_of=h(6),
    )
    by_id = {r.return_id: r for r in rows}
    assert set(by_id) == {"RET-7", "refund:R3:WIDGET", "refund:R4:-"}
    assert by_id["RET-7"].source == "receipt_without_rma"
    assert (by_id["RET-7"].stage, by_id["RET-7"].refunded_at) == ("refunded", h(1))
    assert by_id["refund:R3:WIDGET"].flags == ["refund_without_return"]
    assert stage_counts(rows) == {
        "requested": 0,
        "approved": 0,
        "in_transit": 0,
        "received": 0,
        "refunded": 3,
    }


def test_the_contract_thresholds():
    assert load_thresholds(CONTRACTS_DIR / "returns.yaml") == Thresholds(48, 72, 120)


# ---- the WMS file kind ---------------------------------------------------------------------------
RMA_FILE = (
    b"rma_id,order_id,sku,quantity,requested_at,approved_at,carrier,tracking_number,shipped_at\n"
    b"RMA-1,5100041000,IPOD2008RED,1,2026-11-20T15:00:00-05:00,,,,\n"
    b"RMA-2,5100041000,CASE-SLIM,2,2026-11-20T15:00:00-05:00,2026-11-20T16:00:00Z,UPS,1Z9,"
    b"2026-11-20T17:00:00Z\n"
)


def test_a_good_return_authorizations_file_is_read_whole_and_typed():
    name = "return_authorizations_20261120T15.csv"
    assert kind_of(name) == "return_authorizations"
    parsed = read_warehouse_file(name, RMA_FILE)
    assert isinstance(parsed, ParsedFile) and parsed.kind == "return_authorizations"
    first, second = parsed.rows
    assert first["approved_at"] is None and first["carrier"] is None and first["shipped_at"] is None
    assert first["requested_at"] == datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
    assert (second["quantity"], second["carrier"], second["shipped_at"]) == (
        2,
        "UPS",
        datetime(2026, 11, 20, 17, 0, tzinfo=UTC),
    )
    assert read_warehouse_file(name, render_csv("return_authorizations", list(parsed.rows))).rows


def test_a_bad_return_authorizations_row_refuses_the_whole_file():
    name = "return_authorizations_20261120T16.csv"
    bad = RMA_FILE.replace(b"2026-11-20T16:00:00Z", b"2026-11-20 16:00")
    result = read_warehouse_file(name, bad)
    assert isinstance(result, FileRejection)
    assert (result.rule, result.line, result.column) == ("bad_row", 3, "approved_at")
    missing = RMA_FILE.replace(
        b"RMA-1,5100041000,IPOD2008RED,1,2026-11-20T15:00:00-05:00",
        b"RMA-1,5100041000,IPOD2008RED,1,",
    )
    result = read_warehouse_file(name, missing)
    assert isinstance(result, FileRejection)
    assert (result.rule, result.reason) == (
        "bad_row",
        "line 2, column requested_at: required but empty",
    )
