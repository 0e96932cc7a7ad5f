"""The WMS file streams under a versioned contract: strict loading, drift recorded or blocking, and a
new contract version reading a blocked file again, once."""

import pytest
import yaml

from integration_assets.contracts import ContractError
from integration_assets.contracts.location import CONTRACTS_DIR_ENV, PACKAGED_DIR
from integration_assets.contracts.warehouse_files import (
    FILENAME,
    load_warehouse_files_contract,
    load_warehouse_files_contract_file,
)
from integration_assets.defs.warehouse.assets import column_schema
from integration_assets.sandbox.warehouse_files import write_atomically
from integration_assets.storage.drift_events import claim_drift_notices, open_breaking_drift
from integration_assets.streams.warehouse_files import (
    FILE_KINDS,
    FileRejection,
    ParsedFile,
    read_warehouse_file,
)
from integration_assets_tests.pipeline.conftest import check_outcomes
from integration_assets_tests.pipeline.test_warehouse_stream import WarehouseStream

# The file kinds as they were hard-coded before the contract: (prefix, description, columns as
# (name, type, required, minimum, allowed)), and the column descriptions the code had.
BEFORE = {
    "shipments": (
        "shipments_",
        "units that left a warehouse location for an order, one row per shipment line",
        [
            ("shipment_id", "text", True, None, ()),
            ("order_id", "int", True, 1, ()),
            ("sku", "text", True, None, ()),
            ("quantity", "int", True, 1, ()),
            ("location", "text", True, None, ()),
            ("shipped_at", "timestamp", True, None, ()),
        ],
    ),
    "receipts": (
        "receipts_",
        "supplier deliveries put away at a location",
        [
            ("receipt_id", "text", True, None, ()),
            ("sku", "text", True, None, ()),
            ("quantity", "int", True, 1, ()),
            ("location", "text", True, None, ()),
            ("received_at", "timestamp", True, None, ()),
            ("reference", "text", False, None, ()),
        ],
    ),
    "stock_counts": (
        "stock_count_",
        "a physical count of every SKU at every location",
        [
            ("count_id", "text", True, None, ()),
            ("sku", "text", True, None, ()),
            ("location", "text", True, None, ()),
            ("counted_quantity", "int", True, 0, ()),
            ("counted_at", "timestamp", True, None, ()),
        ],
    ),
    "return_receipts": (
        "return_receipts_",
        "returned units received back at a location (sellable ones go back to stock)",
        [
            ("return_id", "text", True, None, ()),
            ("order_id", "int", True, 1, ()),
            ("sku", "text", True, None, ()),
            ("quantity", "int", True, 1, ()),
            ("condition", "text", True, None, ("sellable", "damaged")),
            ("location", "text", True, None, ()),
            ("received_at", "timestamp", True, None, ()),
        ],
    ),
    "return_authorizations": (
        "return_authorizations_",
        "return authorizations (RMA) as they advance: a row is re-sent when its RMA is approved "
        "or shipped back, and the newest row per rma_id wins",
        [
            ("rma_id", "text", True, None, ()),
            ("order_id", "int", True, 1, ()),
            ("sku", "text", True, None, ()),
            ("quantity", "int", True, 1, ()),
            ("requested_at", "timestamp", True, None, ()),
            ("approved_at", "timestamp", False, None, ()),
            ("carrier", "text", False, None, ()),
            ("tracking_number", "text", False, None, ()),
            ("shipped_at", "timestamp", False, None, ()),
        ],
    ),
}
DESCRIPTIONS_BEFORE = {
    ("shipments", "shipment_id"): "the WMS shipment (one per parcel)",
    ("shipments", "order_id"): "the storefront order id",
    ("shipments", "location"): "the warehouse location that shipped",
    ("receipts", "reference"): "purchase order or ASN",
    ("return_authorizations", "rma_id"): "the return authorization (RMA)",
    ("return_authorizations", "order_id"): "the storefront order id",
    ("return_authorizations", "shipped_at"): "handed to the carrier",
}

SHIPMENT_ROWS = (
    b"SHP-1,5100001000,IPOD2008GREEN,2,WH-EAST,2026-11-20T05:30:00-05:00\n"
    b"SHP-1,5100001000,CASE-SLIM,1,WH-EAST,2026-11-20T10:30:00Z\n"
    b"SHP-2,5100002000,CASE-SLIM,3,WH-WEST,2026-11-20T11:00:00Z\n"
)
HEADER = b"shipment_id,order_id,sku,quantity,location,shipped_at"
FIRST, SECOND, THIRD = SHIPMENT_ROWS.splitlines(keepends=True)


def packaged() -> dict:
    return yaml.safe_load((PACKAGED_DIR / FILENAME).read_text())


def write_contract(folder, raw: dict):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def shipments_column(raw: dict, name: str) -> dict:
    return next(c for c in raw["kinds"]["shipments"]["columns"] if c["name"] == name)


def version_2_accepting_loc(raw: dict) -> dict:
    raw["version"] = 2
    raw["history"].append(
        {
            "version": 2,
            "date": "2026-11-29",
            "change": "shipments: location is sent as loc",
            "by": "warehouse-ops@example.com",
        }
    )
    shipments_column(raw, "location")["source"] = "loc"
    return raw


# ---- the contract file ---------------------------------------------------------------------------
def test_the_packaged_contract_names_its_owner_system_and_history():
    contract = load_warehouse_files_contract()
    assert (contract.name, contract.version, contract.system_of_record, contract.owner) == (
        "warehouse_files",
        1,
        "warehouse",
        "warehouse-ops@example.com",
    )
    assert contract.history[-1].version == contract.version
    assert {kind: k.key for kind, k in contract.kinds.items()}["stock_counts"] == (
        "count_id",
        "sku",
        "location",
    )


@pytest.mark.parametrize(
    ("edit", "path", "problem"),
    [
        (
            lambda raw: shipments_column(raw, "quantity").update(requird=True),
            "kinds.shipments.columns[3].requird",
            "unknown key",
        ),
        (lambda raw: raw.update(ownr="x"), "ownr", "unknown key"),
        (
            lambda raw: raw["kinds"]["receipts"].update(prefx="r_"),
            "kinds.receipts.prefx",
            "unknown key",
        ),
        (
            lambda raw: shipments_column(raw, "quantity").update(type="integer"),
            "kinds.shipments.columns[3].type",
            "must be one of",
        ),
        (
            lambda raw: shipments_column(raw, "quantity").update(required="yes"),
            "kinds.shipments.columns[3].required",
            "expected true or false",
        ),
        (
            lambda raw: shipments_column(raw, "location").update(source="sku"),
            "kinds.shipments.columns",
            "used twice",
        ),
        (
            lambda raw: raw["kinds"]["shipments"].update(key=["parcel"]),
            "kinds.shipments.key",
            "must name columns",
        ),
        (lambda raw: raw.update(version=2), "history", "end at the contract's version 2"),
        (
            lambda raw: raw["kinds"]["stock_counts"].update(prefix="shipments_"),
            "kinds",
            "prefix is used twice",
        ),
    ],
)
def test_the_loader_is_strict_naming_the_file_and_the_path(tmp_path, edit, path, problem):
    raw = packaged()
    edit(raw)
    file = write_contract(tmp_path, raw)
    with pytest.raises(ContractError) as error:
        load_warehouse_files_contract_file(file)
    assert str(error.value).startswith(f"{file}: {path}: ")
    assert problem in str(error.value)


def test_file_kinds_built_from_the_contract_equal_what_the_code_had():
    assert list(FILE_KINDS) == list(BEFORE)
    for kind, (prefix, description, columns) in BEFORE.items():
        built = FILE_KINDS[kind]
        assert (built.kind, built.prefix, built.description) == (kind, prefix, description)
        assert [
            (c.name, c.type, c.required, c.minimum, c.allowed) for c in built.columns
        ] == columns
        assert all(c.source is None for c in built.columns) and built.known_columns == ()
    for (kind, column), description in DESCRIPTIONS_BEFORE.items():
        assert next(c for c in FILE_KINDS[kind].columns if c.name == column).description == (
            description
        )


def test_the_column_schema_in_the_ui_is_generated_from_the_contract():
    schema = column_schema("return_authorizations")
    by_name = {column.name: column for column in schema.columns}
    assert [c.name for c in schema.columns][:9] == [
        c.name for c in FILE_KINDS["return_authorizations"].columns
    ]
    assert by_name["tracking_number"].tags == {"pii": "true"}
    assert by_name["rma_id"].tags == {}
    assert by_name["order_id"].type == "BIGINT" and "at least 1" in by_name["order_id"].description
    assert by_name["approved_at"].constraints.nullable
    assert not by_name["requested_at"].constraints.nullable


# ---- reading a file against the contract (pure) --------------------------------------------------
def test_an_added_column_is_read_past_and_reported_as_additive_drift():
    data = (
        HEADER
        + b",carrier_code\n"
        + SHIPMENT_ROWS.replace(b"Z\n", b"Z,UPS\n").replace(b"-05:00\n", b"-05:00,DHL\n")
    )
    parsed = read_warehouse_file("shipments_20261121T10.csv", data)
    assert isinstance(parsed, ParsedFile), parsed
    assert len(parsed.rows) == 3 and "carrier_code" not in parsed.rows[0]
    assert parsed.rows[2]["location"] == "WH-WEST" and parsed.rows[2]["quantity"] == 3
    [event] = parsed.drift
    assert (event.kind, event.field, event.breaking, event.records_read) == (
        "added",
        "carrier_code",
        False,
        3,
    )
    assert "against contract warehouse_files v1" in event.detail


def test_a_new_column_between_known_ones_is_added_drift_but_a_reordering_is_refused():
    data = b"shipment_id,order_id,sku,batch,quantity,location,shipped_at\n" + (
        b"SHP-1,5100001000,CASE-SLIM,B7,1,WH-EAST,2026-11-20T10:30:00Z\n"
    )
    parsed = read_warehouse_file("shipments_x.csv", data)
    assert isinstance(parsed, ParsedFile) and parsed.rows[0]["quantity"] == 1
    assert [e.field for e in parsed.drift] == ["batch"]
    swapped = b"order_id,shipment_id,sku,quantity,location,shipped_at\n"
    refused = read_warehouse_file("shipments_x.csv", swapped)
    assert isinstance(refused, FileRejection) and refused.rule == "wrong_header"
    assert refused.drift == ()


def test_a_renamed_required_column_is_refused_naming_column_contract_and_version():
    data = HEADER.replace(b"location", b"loc") + b"\n" + SHIPMENT_ROWS
    result = read_warehouse_file("shipments_20261121T11.csv", data)
    assert isinstance(result, FileRejection)
    assert result.rule == "wrong_header"
    assert result.reason.startswith(
        "wrong header for a shipments file against contract warehouse_files v1: "
        "required column 'location' is missing (renamed to 'loc'?)"
    )
    [event] = result.drift
    assert (event.kind, event.field, event.breaking) == ("renamed", "location", True)


def test_a_removed_column_and_a_retyped_column_are_breaking_drift():
    removed = (
        b"receipt_id,sku,quantity,location,received_at\nRCV-1,CASE,5,WH,2026-11-20T08:00:00Z\n"
    )
    result = read_warehouse_file("receipts_1.csv", removed)
    assert isinstance(result, FileRejection)
    assert result.reason.startswith(
        "wrong header for a receipts file against contract warehouse_files v1: "
        "column 'reference' is missing"
    )
    assert [(e.kind, e.field) for e in result.drift] == [("removed", "reference")]

    retyped = (
        HEADER
        + b"\n"
        + SHIPMENT_ROWS.replace(b",5100001000,", b",ORD-1,").replace(b",5100002000,", b",ORD-2,")
    )
    result = read_warehouse_file("shipments_1.csv", retyped)
    assert isinstance(result, FileRejection)
    assert (result.rule, result.column) == ("retyped_column", "order_id")
    assert "against contract warehouse_files v1: required column 'order_id' is int" in result.reason
    assert [(e.kind, e.field, e.breaking) for e in result.drift] == [("retyped", "order_id", True)]
    # One bad value among good ones stays a bad row, not drift.
    one_bad = HEADER + b"\n" + SHIPMENT_ROWS.replace(b",5100002000,", b",ORD-2,")
    result = read_warehouse_file("shipments_2.csv", one_bad)
    assert isinstance(result, FileRejection) and result.rule == "bad_row" and not result.drift


def test_known_columns_are_reviewed_not_drift(tmp_path):
    raw = packaged()
    raw["kinds"]["shipments"]["known_columns"] = ["carrier_code"]
    contract = load_warehouse_files_contract_file(write_contract(tmp_path, raw))
    data = HEADER + b",carrier_code\n" + b"SHP-1,5100001000,CASE,1,WH,2026-11-20T10:30:00Z,UPS\n"
    parsed = read_warehouse_file("shipments_1.csv", data, contract)
    assert isinstance(parsed, ParsedFile) and parsed.drift == ()


# ---- the stream, materialized in process ---------------------------------------------------------
@pytest.fixture
def stream(tmp_path, monkeypatch) -> WarehouseStream:
    monkeypatch.delenv(CONTRACTS_DIR_ENV, raising=False)
    return WarehouseStream(tmp_path)


def test_an_added_column_applies_the_file_and_records_one_drift_event_notified_once(stream):
    extra = SHIPMENT_ROWS.replace(b"\n", b",X1\n")
    write_atomically(stream.inbox, "shipments_20261121T10.csv", HEADER + b",pallet\n" + extra)
    result = stream.run()
    assert result.success and all(check_outcomes(result).values()), check_outcomes(result)
    assert stream.sql(
        "SELECT status, rows, contract, contract_version FROM staging.warehouse_files"
    ) == [("staged", 3, "warehouse_files", 1)]
    assert stream.sql("SELECT count(*) FROM staging.wms_shipments") == [(3,)]
    assert stream.sql(
        "SELECT stream, contract, contract_version, kind, field, breaking, records_read, owner "
        "FROM ops.schema_drift"
    ) == [
        (
            "warehouse/shipments",
            "warehouse_files",
            1,
            "added",
            "pallet",
            False,
            3,
            "warehouse-ops@example.com",
        )
    ]
    # A second file with the same new column: recorded again, but the owner is told once.
    write_atomically(
        stream.inbox,
        "shipments_20261121T11.csv",
        HEADER + b",pallet\n" + extra.splitlines(keepends=True)[0],
    )
    with stream.warehouse.transaction() as con:
        [notice] = claim_drift_notices(con)
    assert (notice.stream, notice.field, notice.breaking) == (
        "warehouse/shipments",
        "pallet",
        False,
    )
    assert stream.run().success
    assert stream.sql("SELECT count(*) FROM ops.schema_drift") == [(2,)]
    with stream.warehouse.transaction() as con:
        assert claim_drift_notices(con) == []


def test_a_renamed_column_blocks_the_file_until_a_new_contract_version_applies_it_once(
    stream, tmp_path, monkeypatch
):
    renamed = HEADER.replace(b"location", b"loc") + b"\n" + SHIPMENT_ROWS
    write_atomically(stream.inbox, "shipments_20261121T12.csv", renamed)
    write_atomically(stream.inbox, "shipments_20261121T13.csv", HEADER + b"\n" + FIRST)
    result = stream.run()
    assert result.success and all(check_outcomes(result).values()), check_outcomes(result)
    [(rule, reason, version)] = stream.sql(
        "SELECT q.rule, q.reason, f.contract_version FROM ops.file_quarantine q "
        "JOIN staging.warehouse_files f ON f.name = q.file_name AND f.sha256 = q.sha256"
    )
    assert (rule, version) == ("wrong_header", 1)
    assert reason.startswith(
        "wrong header for a shipments file against contract warehouse_files v1: "
        "required column 'location' is missing (renamed to 'loc'?)"
    )
    assert stream.sql("SELECT kind, field, breaking FROM ops.schema_drift") == [
        ("renamed", "location", True)
    ]
    assert stream.sql("SELECT count(*) FROM staging.wms_shipments") == [(1,)]
    # The report's "still blocking" list names it while the file is held back.
    assert [(s, d) for s, _, d in _still_blocking(stream)] == [
        (
            "warehouse/shipments",
            "required column 'location' is missing (renamed to 'loc'?) against contract warehouse_files v1",
        )
    ]

    # Without a new version, another run reads nothing again.
    again = stream.run()
    assert stream.sql("SELECT count(*) FROM ops.file_quarantine") == [(1,)]
    assert _files_metadata(again)["files_reread_under_new_contract"] == 0

    write_contract(tmp_path / "contracts", version_2_accepting_loc(packaged()))
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(tmp_path / "contracts"))
    result = stream.run()
    assert result.success and all(check_outcomes(result).values()), check_outcomes(result)
    assert _files_metadata(result)["files_reread_under_new_contract"] == 1
    assert stream.sql("SELECT count(*) FROM ops.file_quarantine") == [(0,)]
    assert _still_blocking(stream) == []
    assert sorted(
        stream.sql("SELECT name, status, rows, contract_version FROM staging.warehouse_files")
    ) == [
        ("shipments_20261121T12.csv", "staged", 3, 2),
        ("shipments_20261121T13.csv", "staged", 1, 1),
    ]
    assert stream.sql(
        "SELECT location, count(*) FROM staging.wms_shipments GROUP BY ALL ORDER BY ALL"
    ) == [("WH-EAST", 3), ("WH-WEST", 1)]
    assert stream.sql(
        "SELECT holds FROM ops.count_balances WHERE scope = 'shipments_20261121T12.csv' "
        "ORDER BY recorded_at DESC LIMIT 1"
    ) == [(True,)]

    # Applied once: a further run under v2 reads nothing again and doubles nothing; a file with
    # the old header name still reads under v2.
    write_atomically(stream.inbox, "shipments_20261121T14.csv", HEADER + b"\n" + THIRD)
    result = stream.run()
    assert result.success and _files_metadata(result)["files_reread_under_new_contract"] == 0
    assert stream.sql(
        "SELECT count(*), count(DISTINCT (file_sha256, line)) FROM staging.wms_shipments"
    ) == [(5, 5)]
    assert stream.sql(
        "SELECT contract_version FROM staging.warehouse_files WHERE name = 'shipments_20261121T14.csv'"
    ) == [(2,)]


def _still_blocking(stream) -> list[tuple[str, str, str]]:
    with stream.warehouse.connect(read_only=True) as con:
        return open_breaking_drift(con)


def _files_metadata(result) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "staging/warehouse/files"
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}
