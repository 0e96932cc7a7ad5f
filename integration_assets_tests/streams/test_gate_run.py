"""The pieces every staging gate and staging asset share, against a real DuckDB warehouse:
verdicts kept in ops.batch_gates and reported per check, the count-balance verdict, a run's books."""

from collections import Counter

import dagster as dg
import pandas as pd
import pytest

from integration_assets.defs.gate_run import NO_BALANCE, GateRun, count_balance_verdict
from integration_assets.storage.balances import record_balance
from integration_assets.storage.staging_books import (
    insert_new_rows,
    staged_balance,
    staging_run_books,
)
from integration_assets.storage.warehouse import Warehouse

ASSET = dg.AssetKey(["staging", "things"])


@pytest.fixture
def warehouse(tmp_path):
    return Warehouse(tmp_path / "warehouse.duckdb")


def test_verdicts_are_kept_per_batch_and_reported_per_check(warehouse):
    gate = GateRun(["keys", "balance"], run_id="run-1")
    with warehouse.connect() as con:
        gate.record(con, "crm/accounts", "b1", {"keys": (True, "ok"), "balance": (1, "holds")})
        gate.record(
            con,
            "crm/accounts",
            "b2",
            {"keys": (False, "two accounts, one id"), "balance": (True, "holds")},
            label="crm/accounts:b2",
        )
        kept = con.execute(
            "SELECT batch_id, check_name, passed, reason, evaluated_run_id FROM ops.batch_gates "
            "ORDER BY 1, 2"
        ).fetchall()

    assert kept == [
        ("b1", "balance", True, "holds", "run-1"),
        ("b1", "keys", True, "ok", "run-1"),
        ("b2", "balance", True, "holds", "run-1"),
        ("b2", "keys", False, "two accounts, one id", "run-1"),
    ]
    keys, balance = gate.results(ASSET, metadata={"contract": "things v1"})
    assert (keys.check_name, keys.passed, balance.passed) == ("keys", False, True)
    assert keys.description == "batch crm/accounts:b2 blocked: two accounts, one id"
    assert balance.description is None
    assert keys.metadata["batches_judged"] == dg.MetadataValue.int(2)
    assert keys.metadata["batches_failed"] == dg.MetadataValue.int(1)
    assert keys.metadata["contract"] == dg.MetadataValue.text("things v1")
    assert keys.metadata["verdicts"] == dg.MetadataValue.json(
        [
            {"batch_id": "b1", "passed": True, "reason": "ok"},
            {"batch_id": "crm/accounts:b2", "passed": False, "reason": "two accounts, one id"},
        ]
    )


def test_only_the_checks_asked_for_are_reported_and_verdicts_can_be_left_out(warehouse):
    gate = GateRun(["keys", "balance", "quirks"], run_id="run-1")
    with warehouse.connect() as con:
        gate.record(con, "s", "b1", {"keys": (True, "ok"), "balance": (True, "holds")})

    results = list(gate.results(ASSET, check_names=("balance",), verdicts_batch_key=None))

    assert [result.check_name for result in results] == ["balance"]
    assert "verdicts" not in results[0].metadata


def test_the_count_balance_verdict_reads_what_staging_recorded_for_the_batch(warehouse):
    with warehouse.connect() as con:
        record_balance(
            con, "run-1", ASSET.to_user_string(), "charges:b1", staged_balance(3, 2, 1, 0)
        )
        record_balance(
            con, "run-1", ASSET.to_user_string(), "refunds:b2", staged_balance(3, 1, 0, 0)
        )

        exact = count_balance_verdict(con, ASSET, "charges:b1")
        pattern = count_balance_verdict(con, ASSET, "%:b2", scope_like=True)
        missing = count_balance_verdict(con, ASSET, "charges:b3")

    assert exact == (
        True,
        "records_read (3) = staged (2) + quarantined (1) + duplicates (0): holds",
    )
    assert pattern[0] is False and pattern[1].endswith("DOES NOT HOLD (off by 2)")
    assert missing == (False, NO_BALANCE)


def test_a_staging_runs_books_add_up_its_batches():
    results = [
        {
            "records_read": 5,
            "staged": 3,
            "quarantined": 1,
            "duplicates": 1,
            "reasons": Counter(a=1),
        },
        {"records_read": 2, "staged": 2, "quarantined": 0, "duplicates": 0, "reasons": Counter()},
        {
            "records_read": 4,
            "staged": 1,
            "quarantined": 2,
            "duplicates": 0,
            "reasons": Counter(a=2),
        },
    ]

    totals, reasons, balance = staging_run_books(results, "reasons")

    assert totals == {"records_read": 11, "staged": 6, "quarantined": 3, "duplicates": 1}
    assert reasons == Counter(a=3)
    assert not balance.holds  # one record of the third batch is unaccounted for
    assert balance.as_text().endswith("DOES NOT HOLD (off by 1)")


def test_only_rows_the_table_does_not_hold_yet_are_inserted(warehouse):
    columns = ("record_id", "payload_hash", "note")
    frame = pd.DataFrame(
        [("r1", "h1", "seen before"), ("r1", "h2", "a new version"), ("r2", "h1", "a new record")],
        columns=columns,
    )
    with warehouse.connect() as con:
        con.execute(
            "CREATE TABLE main.things (record_id VARCHAR, payload_hash VARCHAR, note VARCHAR)"
        )
        con.execute("INSERT INTO main.things VALUES ('r1', 'h1', 'first read')")

        new_rows = insert_new_rows(
            con, "main.things", frame, columns, ("record_id", "payload_hash")
        )
        again = insert_new_rows(con, "main.things", frame, columns, ("record_id", "payload_hash"))
        held = con.execute("SELECT * FROM main.things ORDER BY 1, 2").fetchall()

    assert (new_rows, again) == (2, 0)
    assert held == [
        ("r1", "h1", "first read"),
        ("r1", "h2", "a new version"),
        ("r2", "h1", "a new record"),
    ]


def test_under_a_primary_key_only_new_rows_are_inserted_even_after_a_restage_forgot_them(
    warehouse,
):
    columns = ("record_id", "payload_hash", "note")
    frame = pd.DataFrame(
        [("r1", "h1", "seen before"), ("r1", "h2", "a new version"), ("r2", "h1", "a new record")],
        columns=columns,
    )
    key = ("payload_hash", "record_id")  # the key's order need not be the constraint's
    with warehouse.connect() as con:
        con.execute(
            "CREATE TABLE main.keyed (record_id VARCHAR, payload_hash VARCHAR, note VARCHAR, "
            "PRIMARY KEY (record_id, payload_hash))"
        )
        con.execute("INSERT INTO main.keyed VALUES ('r1', 'h1', 'first read')")
        new_rows = insert_new_rows(con, "main.keyed", frame, columns, key)
        again = insert_new_rows(con, "main.keyed", frame, columns, key)
        # A restage forgets the batch's rows and stages them again in one transaction.
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM main.keyed WHERE note <> 'first read'")
        restaged = insert_new_rows(con, "main.keyed", frame, columns, key)
        con.execute("COMMIT")
        held = con.execute("SELECT * FROM main.keyed ORDER BY 1, 2").fetchall()

    assert (new_rows, again, restaged) == (2, 0, 2)
    assert held == [
        ("r1", "h1", "first read"),
        ("r1", "h2", "a new version"),
        ("r2", "h1", "a new record"),
    ]
