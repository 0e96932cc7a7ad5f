"""Layer 3: the warehouse file-drop stream materialized in process against a temporary inbox, raw log and DuckDB."""

import json
from datetime import timedelta
from pathlib import Path

import dagster as dg
import orjson
import pytest

from integration_assets.defs.warehouse.assets import (
    drop_logs_to_read,
    judge_schema,
    raw_warehouse_files,
    staging_warehouse_files,
    staging_warehouse_gate,
)
from integration_assets.defs.warehouse.names import DROPS_STREAM, FILES_STREAM, SOURCE
from integration_assets.defs.warehouse.sensors import warehouse_inbox_sensor
from integration_assets.sandbox import load_scenario
from integration_assets.sandbox.warehouse_files import sync_inbox, write_atomically
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets_tests.pipeline.conftest import SCENARIOS, check_outcomes, materialized

ASSETS = [raw_warehouse_files, staging_warehouse_files, staging_warehouse_gate]
KIND_TABLES = ("wms_shipments", "wms_receipts", "wms_stock_counts", "wms_return_receipts")


class WarehouseStream:
    def __init__(self, tmp_path: Path, scenario_name: str = "warehouse"):
        self.scenario = load_scenario(SCENARIOS / f"{scenario_name}.yaml")
        self.inbox = tmp_path / "inbox"
        self.raw_log = RawLog(tmp_path / "raw")
        self.warehouse = Warehouse(tmp_path / "warehouse.duckdb")
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            "raw_log": RawLogResource(root=str(tmp_path / "raw")),
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
            "warehouse_inbox": WarehouseInboxResource(path=str(self.inbox)),
        }

    def drop_until(self, hours: float) -> list[Path]:
        return sync_inbox(
            self.scenario, self.scenario.clock.start + timedelta(hours=hours), self.inbox
        )

    def run(self) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ASSETS, resources=self.resources, instance=self.instance, raise_on_error=False
        )

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.warehouse.connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()


@pytest.fixture
def stream(tmp_path) -> WarehouseStream:
    return WarehouseStream(tmp_path)


def test_good_files_are_staged_bad_files_quarantined_whole_duplicates_recognised(stream):
    stream.drop_until(10)
    result = stream.run()
    assert result.success
    assert "staging/warehouse/shipments" in materialized(result)
    assert all(check_outcomes(result).values()), check_outcomes(result)

    statuses = dict(stream.sql("SELECT name, status FROM staging.warehouse_files"))
    assert len(statuses) == 12
    assert sorted(name for name, s in statuses.items() if s == "quarantined") == [
        "receipts_20261120T170000.csv",
        "return_receipts_20261120T173000.csv",
        "shipments_20261120T163000.csv",
        "stock_count_20261120T183000.csv",
    ]
    assert [name for name, s in statuses.items() if s == "duplicate"] == [
        "shipments_20261120T15_resent.csv"
    ]

    reasons = {
        name: (rule, reason, line, column)
        for name, rule, reason, line, column in stream.sql(
            "SELECT file_name, rule, reason, line, column_name FROM ops.file_quarantine"
        )
    }
    assert reasons["stock_count_20261120T183000.csv"] == (
        "bad_row",
        "line 3, column counted_quantity: 'x' is not an integer",
        3,
        "counted_quantity",
    )
    assert reasons["shipments_20261120T163000.csv"][0] == "wrong_header"
    assert "found shipment_id, order_id, sku, qty" in reasons["shipments_20261120T163000.csv"][1]
    assert reasons["receipts_20261120T170000.csv"][0] == "wrong_encoding"
    assert reasons["return_receipts_20261120T173000.csv"][0] == "truncated"

    # Nothing of a quarantined file is staged, not even its good rows.
    quarantined = [row[0] for row in stream.sql("SELECT sha256 FROM ops.file_quarantine")]
    for table in KIND_TABLES:
        assert stream.sql(
            f"SELECT count(*) FROM staging.{table} WHERE file_sha256 IN (SELECT unnest(?))",
            [quarantined],
        ) == [(0,)]
    # Every quarantined file points at its immutable raw copy.
    for raw_ref, sha in stream.sql("SELECT raw_ref, sha256 FROM ops.file_quarantine"):
        batch_id = raw_ref.rsplit("/", 1)[1]
        manifest = stream.raw_log.read_manifest(
            stream.raw_log.root / SOURCE / FILES_STREAM / f"{batch_id}.manifest.json"
        )
        assert manifest.sha256 == sha and stream.raw_log.verify(manifest)

    # The duplicate's shipments were applied once: 3 rows, from the original file only.
    assert stream.sql(
        "SELECT count(*), count(DISTINCT file_sha256) FROM staging.wms_shipments WHERE shipped_at < '2026-11-20 16:00'"
    ) == [(3, 1)]
    assert stream.sql("SELECT count(*) FROM staging.wms_stock_counts") == [(5,)]
    assert stream.sql("SELECT count(*) FROM staging.wms_return_receipts") == [(2,)]
    assert stream.sql("SELECT shipped_at FROM staging.wms_shipments WHERE sku = 'CASE-SLIM'") == [
        (stream.scenario.clock.start.replace(tzinfo=None) + timedelta(hours=1, minutes=20),)
    ]


def test_balances_hold_per_file_and_per_run(stream):
    stream.drop_until(10)
    result = stream.run()
    rows = stream.sql(
        "SELECT asset_key, scope, equation, holds, text FROM ops.count_balances WHERE run_id = ?",
        [result.run_id],
    )
    assert rows and all(holds for _, _, _, holds, _ in rows)
    run_level = {equation: text for key, scope, equation, _, text in rows if scope == "run"}
    assert run_level["files_dropped_equal_landed_plus_duplicates"] == (
        "files_dropped (12) = files_landed (11) + duplicate_drops (1): holds"
    )
    assert run_level["files_landed_equal_staged_plus_quarantined"] == (
        "files_landed (11) = files_staged (7) + files_quarantined (4): holds"
    )
    per_file = {scope: text for _, scope, _, _, text in rows if scope != "run"}
    assert per_file["stock_count_20261120T183000.csv"] == (
        "rows_in_file (3) = rows_staged (0) + rows_in_quarantined_file (3): holds"
    )
    assert per_file["stock_count_20261120.csv"] == (
        "rows_in_file (5) = rows_staged (5) + rows_in_quarantined_file (0): holds"
    )
    raw = [e for e in result.get_asset_materialization_events() if e.asset_key.path[0] == "raw"][0]
    metadata = raw.materialization.metadata
    assert metadata["files_dropped"].value == 12 and metadata["duplicate_drops"].value == 1
    assert metadata["balance_holds"].value is True


def test_every_inbound_file_is_in_the_audit_trail(stream, tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path / "audit"))
    stream.drop_until(10)
    result = stream.run()
    (audit,) = (tmp_path / "audit").glob(f"{result.run_id}.*.jsonl")
    lines = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    assert {(line["system"], line["direction"], line["method"]) for line in lines} == {
        ("warehouse", "inbound", "FILE")
    }
    assert sorted(line["status"] for line in lines) == ["duplicate"] + ["landed"] * 11
    (duplicate,) = [line for line in lines if line["status"] == "duplicate"]
    assert "same bytes as" in duplicate["response_short"]
    assert {line["run_id"] for line in lines} == {result.run_id}


def test_runs_are_incremental_and_a_file_is_never_applied_twice(stream):
    stream.drop_until(2)
    assert stream.run().success
    assert stream.sql("SELECT count(*) FROM staging.warehouse_files") == [(2,)]
    assert stream.run().success  # nothing new: nothing landed, nothing staged
    assert len(stream.raw_log.batches(SOURCE, FILES_STREAM)) == 2
    assert len(stream.raw_log.batches(SOURCE, DROPS_STREAM)) == 1

    # The same export again under a third name, and the original touched: one duplicate, no rows.
    original = stream.inbox / "shipments_20261120T15.csv"
    write_atomically(stream.inbox, "shipments_copy.csv", original.read_bytes())
    original.touch()
    assert stream.run().success
    assert stream.sql(
        "SELECT status, duplicate_of FROM staging.warehouse_files WHERE name = 'shipments_copy.csv'"
    ) == [("duplicate", "shipments_20261120T15.csv")]
    assert stream.sql("SELECT count(*) FROM staging.wms_shipments") == [(3,)]
    assert len(stream.raw_log.batches(SOURCE, FILES_STREAM)) == 2

    # The same name with new bytes (a re-export) is a new file.
    write_atomically(
        stream.inbox, "shipments_copy.csv", original.read_bytes().replace(b",2,", b",3,")
    )
    assert stream.run().success
    assert stream.sql("SELECT count(*) FROM staging.wms_shipments") == [(6,)]

    stream.drop_until(10)
    landed = dg.materialize([raw_warehouse_files], resources=stream.resources)
    assert landed.success
    with stream.warehouse.connect() as con:  # staging reads the new drop log, not the earlier ones
        assert drop_logs_to_read(con, stream.raw_log) == [
            stream.raw_log.latest(SOURCE, DROPS_STREAM)
        ]
    result = stream.run()
    assert result.success and all(check_outcomes(result).values())
    assert stream.sql("SELECT count(*) FROM staging.warehouse_files") == [(14,)]  # 12 + both copies
    with stream.warehouse.connect() as con:
        assert drop_logs_to_read(con, stream.raw_log) == []


def test_a_file_dropped_by_hand_with_a_bad_row_is_quarantined_with_line_and_column(stream):
    write_atomically(
        stream.inbox,
        "receipts_manual.csv",
        b"receipt_id,sku,quantity,location,received_at,reference\n"
        b"RCV-9,CASE-SLIM,4,WH-EAST,2026-11-20T10:00:00Z,PO-9\n"
        b"RCV-10,CASE-SLIM,four,WH-EAST,2026-11-20T10:00:00Z,PO-9\n",
    )
    write_atomically(stream.inbox, "invoices_20261120.csv", b"invoice\n1\n")
    result = stream.run()
    assert result.success and all(check_outcomes(result).values())
    assert stream.sql(
        "SELECT file_name, rule, reason FROM ops.file_quarantine ORDER BY file_name"
    ) == [
        (
            "invoices_20261120.csv",
            "unknown_kind",
            stream.sql("SELECT reason FROM ops.file_quarantine WHERE rule = 'unknown_kind'")[0][0],
        ),
        ("receipts_manual.csv", "bad_row", "line 3, column quantity: 'four' is not an integer"),
    ]
    assert stream.sql("SELECT count(*) FROM staging.wms_receipts") == [(0,)]


def test_the_sensor_requests_one_run_per_set_of_new_files(stream):
    resource = stream.resources["warehouse_inbox"]
    context = dg.build_sensor_context(
        instance=stream.instance, resources={"warehouse_inbox": resource}
    )
    first = warehouse_inbox_sensor(context)
    assert isinstance(first, dg.SkipReason)  # the inbox does not exist yet

    stream.drop_until(2)
    context = dg.build_sensor_context(
        instance=stream.instance, resources={"warehouse_inbox": resource}
    )
    request = warehouse_inbox_sensor(context)
    assert isinstance(request, dg.RunRequest)
    cursor = context.cursor
    assert sorted(json.loads(cursor)) == ["receipts_20261120T1600.csv", "shipments_20261120T15.csv"]

    same = dg.build_sensor_context(
        instance=stream.instance, resources={"warehouse_inbox": resource}, cursor=cursor
    )
    assert isinstance(warehouse_inbox_sensor(same), dg.SkipReason)
    assert same.cursor == cursor

    stream.drop_until(3)
    later = dg.build_sensor_context(
        instance=stream.instance, resources={"warehouse_inbox": resource}, cursor=cursor
    )
    second = warehouse_inbox_sensor(later)
    assert isinstance(second, dg.RunRequest)
    assert second.run_key != request.run_key
    assert set(json.loads(later.cursor)) > set(json.loads(cursor))

    # The same new files seen from the same cursor again give the same run key (Dagster dedups it).
    again = dg.build_sensor_context(
        instance=stream.instance, resources={"warehouse_inbox": resource}, cursor=cursor
    )
    assert warehouse_inbox_sensor(again).run_key == second.run_key


def test_optional_columns_are_staged_as_nulls_and_timestamps_in_utc(stream):
    write_atomically(
        stream.inbox,
        "return_authorizations_manual.csv",
        b"rma_id,order_id,sku,quantity,requested_at,approved_at,carrier,tracking_number,shipped_at\n"
        b"RMA-1,1001,CASE-SLIM,2,2026-11-20T10:00:00-05:00,,,,\n"
        b"RMA-2,1002,CASE-SLIM,1,2026-11-20T10:00:00Z,2026-11-20T12:30:00+01:00,UPS,1Z9,"
        b"2026-11-21T08:00:00Z\n",
    )
    result = stream.run()
    assert result.success and all(check_outcomes(result).values())
    assert stream.sql(
        "SELECT rma_id, order_id, quantity, requested_at::VARCHAR, approved_at::VARCHAR, carrier, "
        "tracking_number, shipped_at::VARCHAR, line, raw_ref LIKE 'raw/warehouse/files/%#line=' || line "
        "FROM staging.wms_return_authorizations ORDER BY line"
    ) == [
        ("RMA-1", 1001, 2, "2026-11-20 15:00:00", None, None, None, None, 2, True),
        (
            "RMA-2",
            1002,
            1,
            "2026-11-20 10:00:00",
            "2026-11-20 11:30:00",
            "UPS",
            "1Z9",
            "2026-11-21 08:00:00",
            3,
            True,
        ),
    ]


def test_the_schema_check_counts_this_runs_rows_without_a_required_field(stream):
    with stream.warehouse.connect() as con:
        # Only reachable if the table lost a NOT NULL: what the check guards against.
        con.execute("ALTER TABLE staging.wms_shipments ALTER COLUMN sku DROP NOT NULL")
        con.execute("ALTER TABLE staging.wms_shipments ALTER COLUMN location DROP NOT NULL")
        rows = [("r1", None, "WH-EAST", 2), ("r1", None, None, 3), ("r0", None, None, 4)]
        for run_id, sku, location, line in rows:
            con.execute(
                "INSERT INTO staging.wms_shipments VALUES "
                "('S-1', 1001, ?, 1, ?, TIMESTAMP '2026-11-20 10:00:00', 'abc', ?, 'ref', ?)",
                [sku, location, line, run_id],
            )
        assert judge_schema(con, "shipments", "r1") == (
            False,
            "2 row(s) staged in this run have no sku; 1 row(s) staged in this run have no location",
        )
        assert judge_schema(con, "shipments", "r2")[0]
