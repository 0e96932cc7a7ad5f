"""ops.outbox in a real DuckDB file: enqueue, attempts, auto-resolution and audited operator actions."""

from datetime import datetime

import orjson
import pytest

from integration_assets.storage import outbox as store
from integration_assets.storage.audit_log import load_audit_files
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams import outbox as rules


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse.duckdb")


def customer(
    external_id: str, name: str, approval: str | None = None, entity: str = "customer"
) -> rules.WriteIntent:
    payload = {"name": name, "billing_address": {"country": "US", "postal_code": "4O2O2"}}
    return rules.WriteIntent(
        "erp", entity, external_id, payload, f"core/customers:{external_id}", approval
    )


def attempt(warehouse, row, outcome, error_class=None, message=""):
    transition = rules.after_attempt(row.attempts, outcome, 400, message, error_class, None, 5)
    with warehouse.transaction() as con:
        return store.record_attempt(con, row, transition, "run-1")


def test_enqueue_twice_adds_nothing_the_second_time(warehouse):
    with warehouse.transaction() as con:
        first = store.enqueue(
            con, "erp", "customer", [customer("1", "Ada"), customer("2", "Bob")], "run-1"
        )
        second = store.enqueue(
            con, "erp", "customer", [customer("1", "Ada"), customer("2", "Bob")], "run-2"
        )
        assert (first.enqueued, second.enqueued, second.unchanged) == (2, 0, 2)
        assert store.counts_by_status(con) == {"pending": 2}


def test_an_intent_for_another_outbox_is_refused(warehouse):
    with (
        warehouse.transaction() as con,
        pytest.raises(ValueError, match="passed to the crm/account outbox"),
    ):
        store.enqueue(con, "crm", "account", [customer("1", "Ada")], "run-1")


def test_a_sent_row_is_never_due_again_and_a_later_delivery_resolves_the_dead_letter(warehouse):
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", [customer("1", "Ada")], "run-1")
    with warehouse.connect() as con:
        (row,) = store.due(con, "erp", "customer")
    attempt(warehouse, row, "rejected", "validation", "billing_address.postal_code: invalid")
    with warehouse.transaction() as con:
        dead = store.get_row(con, row.idempotency_key)
        assert dead["status"] == "dead" and "postal_code" in dead["target_message"]
        assert store.due(con, "erp", "customer") == []
        store.enqueue(
            con, "erp", "customer", [customer("1", "Ada Lane")], "run-2"
        )  # fixed at the source
        (newer,) = store.due(con, "erp", "customer")
    assert attempt(warehouse, newer, "delivered") == 1
    with warehouse.connect() as con:
        resolved = store.get_row(con, row.idempotency_key)
        assert resolved["resolved_at"] is not None and "later write" in resolved["resolution"]
        assert store.due(con, "erp", "customer") == []


def test_edit_and_retry_is_audited_with_before_and_after(warehouse):
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", [customer("1", "Ada")], "run-1")
        (row,) = store.due(con, "erp", "customer")
    attempt(warehouse, row, "rejected", "validation", "billing_address.postal_code: invalid")
    with warehouse.transaction() as con:
        with pytest.raises(store.OutboxError, match="reason"):
            store.retry(
                con, row.idempotency_key, "lena", override={"billing_address.postal_code": "40202"}
            )
        # the address is the CRM's (Customer Service owns it), not the ERP's: its owner must agree
        with pytest.raises(
            store.OutboxError,
            match=r"billing_address.postal_code \(customer.address\) is owned by the crm",
        ):
            store.retry(
                con,
                row.idempotency_key,
                "lena",
                "typo in the ZIP",
                {"billing_address.postal_code": "40202"},
            )
        assert store.actions(con, row.idempotency_key) == []
        store.retry(
            con,
            row.idempotency_key,
            "lena",
            "typo in the ZIP",
            {"billing_address.postal_code": "40202"},
            owner_approved_by="customer_service",  # the owner's key in ownership.yaml will do
        )
        (again,) = store.due(con, "erp", "customer")
        assert again.payload_to_send()["billing_address"]["postal_code"] == "40202"
        assert (
            again.payload["billing_address"]["postal_code"] == "4O2O2"
        )  # the mapped payload stays as mapped
        (action,) = store.actions(con, row.idempotency_key)
    details = orjson.loads(action["details"])
    assert action["actor"] == "lena" and action["action"] == "edit_and_retry"
    assert details["before"] == {"billing_address.postal_code": "4O2O2"}
    assert details["override"] == {"billing_address.postal_code": "40202"}
    assert details["owner_approvals"][0]["attribute"] == "customer.address"


def test_approvals_need_a_person_and_a_reason_and_are_audited(warehouse):
    with warehouse.transaction() as con:
        store.enqueue(
            con,
            "erp",
            "credit_limit",
            [customer("1", "Ada", "credit_limit_change", "credit_limit")],
            "r",
        )
        assert store.due(con, "erp", "credit_limit") == []  # waits for a person
        (row,) = store.list_rows(con, status="awaiting_approval")
        with pytest.raises(store.OutboxError, match="--by"):
            store.decide(con, row["idempotency_key"], True, " ", "ok")
        decided = store.decide(
            con, row["idempotency_key"], True, "maria", "limit agreed with sales"
        )
        assert decided["status"] == "pending" and decided["decided_by"] == "maria"
        assert len(store.due(con, "erp", "credit_limit")) == 1
        with pytest.raises(store.OutboxError, match="not awaiting approval"):
            store.decide(con, row["idempotency_key"], False, "maria", "changed my mind")
        assert [a["action"] for a in store.actions(con)] == ["approve"]


def test_a_rejected_write_is_never_sent(warehouse):
    with warehouse.transaction() as con:
        store.enqueue(
            con,
            "erp",
            "credit_note",
            [customer("1", "Ada", "credit_note_over_threshold", "credit_note")],
            "r",
        )
        (row,) = store.list_rows(con, status="awaiting_approval")
        store.decide(con, row["idempotency_key"], False, "maria", "duplicate of a manual credit")
        assert store.due(con, "erp", "credit_note") == []
        assert store.counts_by_status(con) == {"rejected": 1}


def test_resolve_by_hand_keeps_the_row_for_the_record(warehouse):
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", [customer("1", "Ada")], "run-1")
        (row,) = store.due(con, "erp", "customer")
    attempt(warehouse, row, "conflict", "conflict", "email already used by eid:9")
    with warehouse.transaction() as con:
        resolved = store.resolve(
            con, row.idempotency_key, "lena", "merged the duplicate in the ERP"
        )
        assert resolved["status"] == "dead" and "lena" in resolved["resolution"]
        with pytest.raises(store.OutboxError, match="not an open dead letter"):
            store.resolve(con, row.idempotency_key, "lena", "again")
        with pytest.raises(store.OutboxError, match="already resolved"):
            store.retry(con, row.idempotency_key, "lena")


def test_audit_files_load_once_and_resume_after_appends(warehouse, tmp_path):
    folder = tmp_path / "audit"
    folder.mkdir()
    line = {
        "audit_id": "a1",
        "at": "2026-11-29T10:00:00+00:00",
        "system": "erp",
        "direction": "outbound",
        "method": "PUT",
        "endpoint": "/x",
        "status": "201",
        "duration_ms": 3.5,
        "attempt": 1,
        "run_id": "r",
    }
    path = folder / "r.1.jsonl"
    path.write_bytes(orjson.dumps(line) + b"\n" + b"{not json}\n" + b'{"audit_id": "partial')
    with warehouse.transaction() as con:
        first = load_audit_files(con, folder)
    assert (first.lines_read, first.lines_loaded, len(first.unreadable)) == (2, 1, 1)
    assert first.unreadable == ["r.1.jsonl@" + str(len(orjson.dumps(line)) + 1)]
    with path.open("ab") as handle:  # the partial line is completed, and one more is appended
        handle.write(
            b'", "at": "2026-11-29T10:00:01+00:00", "system": "erp", "direction": "outbound", "method": "PUT", "endpoint": "/y", "status": "503", "duration_ms": 1, "attempt": 2}\n'
        )
    with warehouse.transaction() as con:
        second = load_audit_files(con, folder)
        third = load_audit_files(con, folder)
        statuses = con.execute("SELECT status FROM ops.audit_log ORDER BY occurred_at").fetchall()
    assert (second.lines_read, second.lines_loaded) == (1, 1)
    assert third.lines_read == 0
    assert statuses == [("201",), ("503",)]


BOOKED_COLUMNS = (
    "idempotency_key",
    "status",
    "attempts",
    "error_class",
    "target_status",
    "target_message",
    "target_record_id",
    "last_run_id",
    "last_attempt_at",
    "sent_at",
    "dead_at",
    "resolution",
    "resolved_at",
)
OUTCOMES = {
    "delivered": ("delivered", 200, "updated", None, "id-1"),
    "rejected": ("rejected", 400, "name: invalid", "validation", None),
    "unavailable": ("unavailable", None, "connection refused", "connection", None),
}


def _two_due_rows_per_record(warehouse, records: list[str]) -> None:
    """Each record: a dead letter an operator put back in the queue, then a newer write, both due;
    the last record's dead letter stays dead (only its newer write is due)."""
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", [customer(r, "Ada") for r in records], "run-0")
        first = store.due(con, "erp", "customer")
        refused = rules.after_attempt(0, "rejected", 400, "name: invalid", "validation", None, 5)
        for row in first:
            store.record_attempt(con, row, refused, "run-0", datetime(2026, 11, 29, 9))
        store.enqueue(con, "erp", "customer", [customer(r, "Ada Lane") for r in records], "run-0")
        for row in first[:-1]:
            store.retry(con, row.idempotency_key, "lena")


def test_a_chunk_booked_together_ends_as_booking_each_attempt_in_turn(tmp_path):
    """Two due rows for one record (a retried dead letter and a newer write), every pair of
    outcomes, in one chunk: a delivery resolves only the dead letters open when it was made."""
    pairs = [(first, second) for first in OUTCOMES for second in OUTCOMES]
    records = [str(n) for n in range(len(pairs) + 1)]
    booked = {}
    for mode in ("one_by_one", "chunk"):
        warehouse = Warehouse(tmp_path / f"{mode}.duckdb")
        _two_due_rows_per_record(warehouse, records)
        with warehouse.connect() as con:
            due = store.due(con, "erp", "customer")
        by_record: dict[str, list] = {}
        for row in due:
            by_record.setdefault(row.external_id, []).append(row)
        assert [len(by_record[r]) for r in records] == [2] * len(pairs) + [1]
        pairs_by_record = dict(zip(records, [*pairs, ("delivered",)], strict=True))
        attempts = []
        for position, row in enumerate(due):
            which = by_record[row.external_id].index(row)
            outcome, status, message, error_class, record_id = OUTCOMES[
                pairs_by_record[row.external_id][which]
            ]
            transition = rules.after_attempt(
                row.attempts, outcome, status, message, error_class, record_id, 24
            )
            attempts.append(store.Attempt(row, transition, datetime(2026, 11, 29, 10, position)))
        with warehouse.transaction() as con:
            if mode == "chunk":
                resolved = store.record_attempts(con, attempts, "run-1")
            else:
                resolved = sum(
                    store.record_attempt(con, a.row, a.transition, "run-1", a.at) for a in attempts
                )
            rows = store.list_rows(con)
        booked[mode] = (
            resolved,
            sorted(tuple(row[c] for c in BOOKED_COLUMNS) for row in rows),
        )
    assert booked["chunk"] == booked["one_by_one"]
    resolved, rows = booked["chunk"]
    # Resolved: the refusal followed by a delivery in the chunk, and the last record's older dead
    # letter. Still open: a refusal made after the record's delivery, both of a refused pair, and a
    # refusal with no delivery.
    assert resolved == 2
    assert sum(1 for row in rows if row[1] == "dead" and row[12] is None) == 5


def test_enqueue_reads_the_heads_of_its_records_and_never_reuses_a_key(warehouse):
    """A record whose content goes back to an earlier version gets a fresh key; records the pass
    does not mention keep their open rows."""
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", [customer("1", "Ada"), customer("2", "Bob")], "r1")
        store.enqueue(con, "erp", "customer", [customer("1", "Ada Lane")], "r2")
        back = store.enqueue(con, "erp", "customer", [customer("1", "Ada")], "r3")
        (row,) = back.new_rows
        assert row.sequence == 3 and row.idempotency_key.endswith("~3")
        assert back.superseded_keys and store.counts_by_status(con) == {
            "pending": 2,
            "superseded": 2,
        }
        assert {r.external_id for r in store.due(con, "erp", "customer")} == {"1", "2"}
