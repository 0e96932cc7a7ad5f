"""The digest and the dry run's comparison, on small hand-made inputs (no pipeline)."""

import duckdb
import pytest

from integration_assets.delivery.planning import PlanResult
from integration_assets.replay.digest import tables_digest
from integration_assets.replay.dry_run import LastIntended, changed_fields, compare
from integration_assets.replay.intended import IntendedState, LookupRefused, ReadOnlyLookups
from integration_assets.replay.read_only_raw import RawLogIsReadOnly, ReadOnlyRawLog
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.outbox import WriteIntent


def warehouse_with(path, rows):
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA core")
    con.execute(
        "CREATE TABLE core.things (id INTEGER, amount BIGINT, run_id VARCHAR, occurred_at TIMESTAMP)"
    )
    con.executemany("INSERT INTO core.things VALUES (?, ?, ?, ?)", rows)
    con.close()
    return Warehouse(path)


def test_table_digest_ignores_row_order_and_run_ids_but_not_values(tmp_path):
    base = warehouse_with(
        tmp_path / "a.duckdb",
        [(1, 100, "run-a", "2026-11-20 10:00:00"), (2, 200, "run-a", "2026-11-20 11:00:00")],
    )
    reordered_other_run = warehouse_with(
        tmp_path / "b.duckdb",
        [(2, 200, "run-b", "2026-11-20 11:00:00"), (1, 100, "run-c", "2026-11-20 10:00:00")],
    )
    changed_amount = warehouse_with(
        tmp_path / "c.duckdb",
        [(1, 101, "run-a", "2026-11-20 10:00:00"), (2, 200, "run-a", "2026-11-20 11:00:00")],
    )
    doubled = warehouse_with(
        tmp_path / "d.duckdb",
        [(1, 100, "run-a", "2026-11-20 10:00:00")] * 2 + [(2, 200, "run-a", "2026-11-20 11:00:00")],
    )

    digest = tables_digest(base)["core.things"]
    assert digest.note == "without run_id"
    assert tables_digest(reordered_other_run)["core.things"].sha256 == digest.sha256
    assert tables_digest(changed_amount)["core.things"].sha256 != digest.sha256
    assert tables_digest(doubled)["core.things"].sha256 != digest.sha256  # a multiset, not a set


def intent(external_id, payload):
    return WriteIntent("erp", "invoice", external_id, payload, f"ref:{external_id}")


def test_dry_run_lists_new_changed_with_fields_and_no_longer_intended():
    replayed = PlanResult("erp", "invoice")
    replayed.intents = [
        intent("INV-1", {"total": 100, "lines": [{"sku": "A", "amount": 50}]}),
        intent("INV-2", {"total": 210, "lines": [{"sku": "B", "amount": 210}], "notes": "x"}),
        intent("INV-4", {"total": 5}),
    ]
    live_planned = PlanResult("erp", "invoice")
    live_planned.intents = [
        intent("INV-1", {"total": 100, "lines": [{"sku": "A", "amount": 50}]}),
        intent("INV-2", {"total": 200, "lines": [{"sku": "B", "amount": 200}]}),
        intent("INV-3", {"total": 7}),
    ]
    live = {
        ("erp", "invoice", "INV-1"): LastIntended(
            {"total": 100, "lines": [{"sku": "A", "amount": 50}]},
            payload_hash({"total": 100, "lines": [{"sku": "A", "amount": 50}]}),
            "sent",
        ),
        ("erp", "invoice", "INV-2"): LastIntended(
            {"total": 200, "lines": [{"sku": "B", "amount": 200}]}, "old", "dead"
        ),
        ("erp", "invoice", "INV-3"): LastIntended({"total": 7}, "h3", "sent"),
        # A settled adjustment: sent once, planned by nobody any more. Not a change.
        ("erp", "invoice", "INV-9-ADJ1"): LastIntended({"total": 1}, "h9", "sent"),
    }
    result = compare(
        IntendedState(plans={("erp", "invoice"): replayed}),
        live,
        IntendedState(plans={("erp", "invoice"): live_planned}),
    )
    assert [(c.external_id, c.change, c.fields, c.live_status) for c in result.changes] == [
        ("INV-2", "changed", ("lines[0].amount", "notes", "total"), "dead"),
        ("INV-4", "new", (), None),
        ("INV-3", "no_longer_intended", (), "sent"),
    ]
    assert [(c.external_id, c.change) for c in result.not_planned] == [
        ("INV-9-ADJ1", "not_planned")
    ]


def test_changed_fields_names_paths_and_whole_list_changes():
    assert changed_fields({"a": {"b": 1}}, {"a": {"b": 1}}) == []
    assert changed_fields({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b"]
    assert changed_fields({"lines": [1]}, {"lines": [1, 2]}) == ["lines"]
    assert changed_fields(1, 2) == ["(whole payload)"]


def test_raw_log_is_read_only_during_replay(tmp_path):
    log = ReadOnlyRawLog(tmp_path / "raw")
    with pytest.raises(RawLogIsReadOnly):
        log.open_batch("storefront", "orders")
    assert not (tmp_path / "raw").exists()  # not even a folder


class Client:
    default_owner_id = "005"

    def users_by_email(self, email):
        self.asked = getattr(self, "asked", 0) + 1
        return [{"Id": "005", "Email": email}]

    def upsert(self, *args):
        raise AssertionError("a write reached the client")


def test_planner_clients_answer_lookups_once_and_refuse_writes():
    lookups = ReadOnlyLookups("crm", client := Client())
    assert lookups.users_by_email("a@x") == lookups.users_by_email("a@x")
    assert client.asked == 1 and lookups.requests == 1
    assert lookups.default_owner_id == "005"
    with pytest.raises(LookupRefused):
        lookups.upsert("Account", "1", {}, "key")
