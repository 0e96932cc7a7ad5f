"""The retention policy: raw compressed in place and still read byte for byte, audit files archived
only once loaded whole, old audit rows pruned only where the archive keeps them."""

import gzip
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson

from integration_assets.defs.retention.assets import ops_retention
from integration_assets.storage.audit_log import load_audit_files
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.retention import (
    RetentionPolicy,
    RetentionReport,
    apply_policy,
    compress_raw,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.audit import audit_line

LATER = datetime.now(UTC) + timedelta(hours=1)


def land(log: RawLog, stream: str, payloads: list) -> object:
    batch = log.open_batch("storefront", stream)
    for index, payload in enumerate(payloads):
        batch.append({"batch_id": batch.batch_id, "record_index": index, "payload": payload})
    return batch.commit({"cursor_after": "2026-11-20T00:00:00Z"})


def test_compressed_batches_read_back_the_committed_bytes(tmp_path):
    log = RawLog(tmp_path / "raw")
    payloads = [{"id": n, "note": "é" * 50 + "=HYPERLINK(1)"} for n in range(200)]
    old = land(log, "orders", payloads)
    report = RetentionReport()
    compress_raw(log, LATER, report)
    assert report.raw_files_compressed == 1 and report.raw_bytes_after < report.raw_bytes_before / 3
    assert not old.path.exists() and old.path.with_name(old.path.name + ".gz").exists()
    (again,) = log.batches("storefront", "orders")  # the manifest is untouched
    assert again == old
    assert log.verify(again)
    assert [r["payload"] for r in log.read_records(again)] == payloads
    assert log.payloads([again.raw_ref(7)]) == {again.raw_ref(7): payloads[7]}
    # Run again: nothing left to compress, nothing compressed twice.
    second = RetentionReport()
    compress_raw(log, LATER, second)
    assert second.raw_files_compressed == 0


def test_only_batches_older_than_the_threshold_are_compressed(tmp_path):
    log = RawLog(tmp_path / "raw")
    old = land(log, "orders", [{"id": 1}])
    past = datetime.now(UTC) - timedelta(hours=3)
    manifest_path = old.path.with_name(f"{old.batch_id}.manifest.json")
    os.utime(manifest_path, (past.timestamp(), past.timestamp()))
    new = land(log, "orders", [{"id": 2}])
    report = RetentionReport()
    compress_raw(log, datetime.now(UTC) - timedelta(hours=2), report)
    assert report.raw_files_compressed == 1
    assert not old.path.exists() and new.path.exists()


def test_a_batch_whose_bytes_changed_is_left_plain_and_reported(tmp_path):
    log = RawLog(tmp_path / "raw")
    manifest = land(log, "orders", [{"id": 1}])
    manifest.path.write_bytes(manifest.path.read_bytes().replace(b'"id":1', b'"id":2'))
    report = RetentionReport()
    compress_raw(log, LATER, report)
    assert report.raw_files_compressed == 0 and manifest.path.exists()
    assert "do not match the manifest's sha256" in report.problems[0]
    assert not manifest.path.with_name(manifest.path.name + ".gz").exists()


def audit_lines(n: int, at: datetime) -> bytes:
    """`n` exchanges as the clients write them, dated `at`."""
    lines = []
    for attempt in range(1, n + 1):
        line = audit_line(
            system="erp",
            direction="outbound",
            method="PUT",
            url="https://erp.example/api/v1/records/customer/eid:1",
            status=200,
            duration_ms=12.5,
            attempt=attempt,
            run_id="run",
        )
        lines.append(orjson.dumps({**line, "at": at.isoformat()}) + b"\n")
    return b"".join(lines)


def test_audit_files_are_archived_once_loaded_whole_and_rows_pruned_after_the_archive(tmp_path):
    audit = tmp_path / "audit"
    audit.mkdir()
    long_ago = datetime.now(UTC) - timedelta(days=500)
    (audit / "run-a.1.jsonl").write_bytes(audit_lines(3, long_ago))
    (audit / "run-b.1.jsonl").write_bytes(audit_lines(2, long_ago))
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.transaction() as con:
        assert load_audit_files(con, audit).lines_loaded == 5
    # run-b is still being written: its new line is not loaded yet, so it must stay.
    with (audit / "run-b.1.jsonl").open("ab") as handle:
        handle.write(audit_lines(1, datetime.now(UTC)))
    original = (audit / "run-a.1.jsonl").read_bytes()
    report = apply_policy(RawLog(tmp_path / "raw"), warehouse, audit, RetentionPolicy(0, 0, 400))
    assert report.audit_files_archived == 1 and report.audit_rows_pruned == 3
    assert gzip.decompress((audit / "archive" / "run-a.1.jsonl.gz").read_bytes()) == original
    assert (audit / "run-b.1.jsonl").exists() and not (audit / "run-a.1.jsonl").exists()
    with warehouse.transaction() as con:
        load = load_audit_files(con, audit)  # the next load neither misses nor repeats anything
        assert (load.lines_loaded, load.files_seen) == (1, 1)
        rows = dict(
            con.execute("SELECT audit_file, count(*) FROM ops.audit_log GROUP BY 1").fetchall()
        )
    # run-a's rows live on in the archive only; run-b's old rows stay (its file is not archived).
    assert rows == {"run-b.1.jsonl": 3}


def test_the_retention_asset_reports_what_it_did(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATION_ASSETS_AUDIT_DIR", str(tmp_path / "audit"))
    log = RawLog(tmp_path / "raw")
    land(log, "orders", [{"id": n} for n in range(50)])
    result = dg.materialize(
        [ops_retention],
        resources={
            "raw_log": RawLogResource(root=str(tmp_path / "raw")),
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        },
        run_config={"ops": {"ops__retention": {"config": {"compress_raw_after_hours": 0.0}}}},
    )
    metadata = result.asset_materializations_for_node("ops__retention")[0].metadata
    assert metadata["raw_files_compressed"].value == 1
    assert metadata["raw_bytes_now"].value < metadata["raw_bytes_before"].value + 1000
    assert metadata["problems"].value == 0
