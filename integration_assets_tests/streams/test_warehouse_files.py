"""WMS file reading: a file is read whole, or refused whole with a reason naming line and column."""

from datetime import UTC, datetime

import pytest

from integration_assets.streams.warehouse_files import (
    FILE_KINDS,
    FileRejection,
    ParsedFile,
    kind_of,
    read_warehouse_file,
    render_csv,
    sha256_of,
)

GOOD = {
    "shipments": (
        "shipments_20261120T10.csv",
        b"shipment_id,order_id,sku,quantity,location,shipped_at\n"
        b"SHP-1,5100001000,IPOD2008GREEN,2,WH-EAST,2026-11-20T05:30:00-05:00\n"
        b"SHP-1,5100001000,CASE-SLIM,1,WH-EAST,2026-11-20T10:30:00Z\n",
    ),
    "receipts": (
        "receipts_20261120T1300.csv",
        b"receipt_id,sku,quantity,location,received_at,reference\n"
        b"RCV-1,CASE-SLIM,50,WH-WEST,2026-11-20T08:00:00-05:00,PO-1001\n"
        b"RCV-2,CASE-SLIM,5,WH-WEST,2026-11-20T08:00:00-05:00,\n",
    ),
    "stock_counts": (
        "stock_count_20261120.csv",
        b"count_id,sku,location,counted_quantity,counted_at\n"
        b"CNT-1,CASE-SLIM,WH-EAST,0,2026-11-20T23:00:00+00:00\n",
    ),
    "return_receipts": (
        "return_receipts_20261121T07.csv",
        b"return_id,order_id,sku,quantity,condition,location,received_at\n"
        b"RET-1,5100041000,IPOD2008RED,1,damaged,WH-EAST,2026-11-21T02:00:00-05:00\n",
    ),
}


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_a_good_file_of_each_kind_is_read_whole_and_typed(kind):
    name, data = GOOD[kind]
    parsed = read_warehouse_file(name, data)
    assert isinstance(parsed, ParsedFile), parsed
    assert parsed.kind == kind
    assert parsed.sha256 == sha256_of(data) and parsed.size == len(data)
    assert [row["line"] for row in parsed.rows] == list(range(2, 2 + len(parsed.rows)))
    for row in parsed.rows:
        assert set(row) == {"line", *FILE_KINDS[kind].header}
        for column in FILE_KINDS[kind].columns:
            if column.type == "int":
                assert isinstance(row[column.name], int)
            if column.type == "timestamp":
                assert row[column.name].tzinfo == UTC


def test_timestamps_with_an_offset_come_out_in_utc_and_optional_fields_may_be_empty():
    shipments = read_warehouse_file(*GOOD["shipments"])
    assert shipments.rows[0]["shipped_at"] == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    assert shipments.rows[0]["quantity"] == 2 and shipments.rows[0]["order_id"] == 5100001000
    receipts = read_warehouse_file(*GOOD["receipts"])
    assert receipts.rows[1]["reference"] is None


def test_a_header_only_file_is_a_good_file_with_no_rows():
    parsed = read_warehouse_file("shipments_20261120T11.csv", render_csv("shipments", []))
    assert isinstance(parsed, ParsedFile) and parsed.rows == ()


def test_a_utf8_byte_order_mark_is_accepted():
    name, data = GOOD["stock_counts"]
    assert isinstance(read_warehouse_file(name, b"\xef\xbb\xbf" + data), ParsedFile)


def rejected(name: str, data: bytes) -> FileRejection:
    result = read_warehouse_file(name, data)
    assert isinstance(result, FileRejection), result
    assert result.sha256 == sha256_of(data)
    return result


def test_an_unparseable_row_names_the_line_and_the_column():
    data = (
        b"receipt_id,sku,quantity,location,received_at,reference\n"
        + b"RCV-1,CASE-SLIM,5,WH-WEST,2026-11-20T08:00:00-05:00,PO\n" * 5
        + b"RCV-7,CASE-SLIM,x,WH-WEST,2026-11-20T08:00:00-05:00,PO\n"
    )
    result = rejected("receipts_20261120T1300.csv", data)
    assert result.rule == "bad_row"
    assert result.reason == "line 7, column quantity: 'x' is not an integer"
    assert (result.line, result.column, result.kind, result.data_lines) == (
        7,
        "quantity",
        "receipts",
        6,
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            b"SHP-1,5100001000,IPOD2008GREEN,2,WH-EAST,2026-11-20 05:30:00\n",
            "line 2, column shipped_at: '2026-11-20 05:30:00' is not an ISO-8601 timestamp with a UTC offset",
        ),
        (
            b"SHP-1,5100001000,,2,WH-EAST,2026-11-20T05:30:00Z\n",
            "line 2, column sku: required but empty",
        ),
        (
            b"SHP-1,5100001000,IPOD2008GREEN,0,WH-EAST,2026-11-20T05:30:00Z\n",
            "line 2, column quantity: 0 is below the minimum 1",
        ),
        (
            b"SHP-1,5100001000,IPOD2008GREEN,2.5,WH-EAST,2026-11-20T05:30:00Z\n",
            "line 2, column quantity: '2.5' is not an integer",
        ),
        (
            b"SHP-1,5100001000,IPOD2008GREEN,2,WH-EAST,2026-11-20T05:30:00Z,extra\n",
            "line 2: expected 6 columns (shipment_id, order_id, sku, quantity, location, shipped_at), found 7",
        ),
    ],
)
def test_each_bad_value_gets_its_own_reason(row, reason):
    header = b"shipment_id,order_id,sku,quantity,location,shipped_at\n"
    assert rejected("shipments_20261120T10.csv", header + row).reason == reason


def test_a_return_condition_outside_the_allowed_set_is_refused():
    name, data = GOOD["return_receipts"]
    result = rejected(name, data.replace(b"damaged", b"broken"))
    assert result.reason == "line 2, column condition: 'broken' is not one of sellable, damaged"


def test_a_wrong_header_names_expected_and_found_columns():
    name, data = GOOD["shipments"]
    result = rejected(name, data.replace(b"quantity", b"qty", 1))
    assert result.rule == "wrong_header" and result.line == 1
    assert (
        "expected columns shipment_id, order_id, sku, quantity, location, shipped_at"
        in result.reason
    )
    assert "found shipment_id, order_id, sku, qty, location, shipped_at" in result.reason
    assert "missing: quantity; unexpected: qty" in result.reason


def test_columns_in_another_order_are_a_wrong_header_too():
    data = b"order_id,shipment_id,sku,quantity,location,shipped_at\n"
    assert "same columns in a different order" in rejected("shipments_x.csv", data).reason


def test_a_wrong_encoding_says_so():
    name, data = GOOD["receipts"]
    result = rejected(name, data.replace(b"WH-WEST", "Lager Süd".encode("cp1252"), 1))
    assert result.rule == "wrong_encoding"
    assert result.reason.startswith("not UTF-8: byte 0xfc at offset")
    assert "(line 2)" in result.reason


def test_a_file_cut_off_mid_line_is_truncated():
    name, data = GOOD["shipments"]
    result = rejected(name, data[:-20])
    assert result.rule == "truncated" and result.line == 3
    assert "last line (line 3) does not end with a newline" in result.reason


def test_a_last_line_with_fewer_columns_is_truncated():
    name, data = GOOD["shipments"]
    cut = data[: data.rindex(b",WH-EAST")] + b"\n"
    result = rejected(name, cut)
    assert result.rule == "truncated"
    assert result.reason.startswith("truncated: the last line (line 3) has 4 of 6 columns")


def test_an_empty_file_and_an_unknown_name_are_refused():
    assert rejected("shipments_20261120T10.csv", b"").rule == "empty_file"
    unknown = rejected("invoices_20261120.csv", GOOD["shipments"][1])
    assert unknown.rule == "unknown_kind" and unknown.kind is None
    assert "shipments_*.csv" in unknown.reason


def test_kinds_come_from_the_name_prefix():
    assert kind_of("shipments_20261120T10.csv") == "shipments"
    assert kind_of("shipments_20261120T10_resent.csv") == "shipments"
    assert kind_of("return_receipts_20261120T10.csv") == "return_receipts"
    assert kind_of("receipts_20261120T1300.csv") == "receipts"
    assert kind_of("stock_count_20261120.csv") == "stock_counts"
    assert kind_of("stock_count_20261120.txt") is None
