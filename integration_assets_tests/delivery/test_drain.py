"""The drain loop over a real DuckDB outbox, with a send function standing in for the target's answers."""

import pytest

from integration_assets.delivery.drain import DrainPolicy, drain
from integration_assets.delivery.targets import target_for
from integration_assets.storage import outbox as store
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.outbox import WriteIntent
from integration_assets.systems.write_outcome import TargetAuthError, WriteOutcome

DELIVERED = WriteOutcome("delivered", 201, "created", created=True)
DOWN = WriteOutcome("unavailable", None, "connection refused", "connection")


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    intents = [
        WriteIntent("erp", "customer", str(n), {"name": f"customer {n}"}, f"src:{n}")
        for n in range(6)
    ]
    with warehouse.transaction() as con:
        store.enqueue(con, "erp", "customer", intents, "run-0")
    return warehouse


def statuses(warehouse) -> dict[str, int]:
    with warehouse.connect() as con:
        return store.counts_by_status(con, "erp", "customer")


def test_one_refusal_is_dead_lettered_while_the_others_are_delivered(warehouse):
    def send(row):
        if row.external_id == "3":
            return WriteOutcome("rejected", 400, "email: invalid", "validation")
        return DELIVERED

    report = drain(warehouse, "erp", "customer", send, "run-1")
    assert statuses(warehouse) == {"sent": 5, "dead": 1}
    assert report.as_metadata()["dead_lettered"] == 1 and report.created == 5
    assert report.dead_letters[0]["message"] == "email: invalid"
    sent_twice = drain(warehouse, "erp", "customer", send, "run-2")
    assert sent_twice.attempted == 0  # nothing delivered is ever sent again


def test_a_target_that_is_down_opens_the_breaker_and_nothing_is_lost(warehouse):
    calls = []

    def send(row):
        calls.append(row.external_id)
        return DOWN

    report = drain(warehouse, "erp", "customer", send, "run-1", DrainPolicy(breaker_threshold=3))
    assert len(calls) == 3 and report.deferred == 3 and report.breaker_open
    assert statuses(warehouse) == {"failed": 3, "pending": 3}
    recovered = drain(warehouse, "erp", "customer", lambda row: DELIVERED, "run-2")
    assert recovered.attempted == 6 and statuses(warehouse) == {"sent": 6}


def test_outcomes_are_booked_in_chunks_while_the_drain_goes_on(warehouse):
    seen_mid_drain = []

    def send(row):
        if row.external_id == "4":  # after four writes: two chunks of two were booked
            seen_mid_drain.append(statuses(warehouse))
        return DELIVERED

    policy = DrainPolicy(book_every_writes=2, book_every_seconds=3600)
    drain(warehouse, "erp", "customer", send, "run-1", policy)
    assert seen_mid_drain == [{"sent": 4, "pending": 2}]
    assert statuses(warehouse) == {"sent": 6}


def test_a_slow_target_still_gets_its_outcomes_booked_every_few_seconds(warehouse):
    seen_mid_drain = []

    def send(row):
        if row.external_id == "2":
            seen_mid_drain.append(statuses(warehouse))
        return DELIVERED

    # Every write takes "longer" than the booking interval: each outcome is booked before the next.
    policy = DrainPolicy(book_every_writes=1000, book_every_seconds=0)
    drain(warehouse, "erp", "customer", send, "run-1", policy)
    assert seen_mid_drain == [{"sent": 2, "pending": 4}]


def test_retries_run_out_into_a_dead_letter(warehouse):
    policy = DrainPolicy(max_attempts=2, breaker_threshold=100)
    drain(warehouse, "erp", "customer", lambda row: DOWN, "run-1", policy)
    drain(warehouse, "erp", "customer", lambda row: DOWN, "run-2", policy)
    with warehouse.connect() as con:
        rows = store.list_rows(con, status="dead")
    assert len(rows) == 6 and {row["error_class"] for row in rows} == {"retries_exhausted"}


def test_an_auth_failure_books_what_was_done_then_fails(warehouse):
    def send(row):
        if row.external_id == "2":
            raise TargetAuthError("the ERP refused the client credentials; check ERP_CLIENT_SECRET")
        return DELIVERED

    with pytest.raises(TargetAuthError, match="ERP_CLIENT_SECRET"):
        drain(warehouse, "erp", "customer", send, "run-1")
    assert statuses(warehouse) == {"sent": 2, "pending": 4}


def test_a_child_of_a_write_that_could_not_be_built_is_held_not_sent():
    from integration_assets.delivery.planning import plan_from_mapped
    from integration_assets.streams.mapped import Mapped

    orders = [
        (
            Mapped(
                "erp",
                "sales_order",
                "1",
                {"customer_eid": "c1"},
                depends_on=(("erp", "customer", "c1"),),
            ),
            "o1",
        ),
        (
            Mapped(
                "erp",
                "sales_order",
                "2",
                {"customer_eid": "c2"},
                depends_on=(("erp", "customer", "c2"),),
            ),
            "o2",
        ),
    ]
    plan = plan_from_mapped("erp", "sales_order", orders)
    held = plan.hold_children_of_unbuilt({("erp", "customer", "c2"): "name_missing"})
    assert held == 1 and [intent.external_id for intent in plan.intents] == ["1"]
    (quarantined,) = plan.quarantined
    assert quarantined.reason == "parent_not_built: erp/customer/c2 (name_missing)"
    assert plan.balance().holds  # held writes stay in the books as quarantined, not lost


class _RecordingErp:
    """Records which call carried each write: the single upsert or the bulk one."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.calls: list[tuple[str, list[str]]] = []

    def upsert(self, record_type, external_id, payload, key):
        self.calls.append(("upsert", [external_id]))
        return DELIVERED

    def upsert_many(self, record_type, writes):
        self.calls.append(("upsert_many", [write.external_id for write in writes]))
        return [DELIVERED] * len(writes)


@pytest.mark.parametrize(
    ("batch_size", "calls"),
    [
        (4, [("upsert_many", ["0", "1", "2", "3"]), ("upsert_many", ["4", "5"])]),
        (1, [("upsert", [str(n)]) for n in range(6)]),  # a target with no bulk endpoint
    ],
)
def test_a_target_is_written_in_bulk_of_its_clients_batch_size_or_one_by_one(
    warehouse, batch_size, calls
):
    client = _RecordingErp(batch_size)
    report = target_for("erp", "customer").drain(warehouse, client, "run-1")
    assert client.calls == calls
    assert report.attempted == 6 and statuses(warehouse) == {"sent": 6}


def test_one_refusal_in_a_bulk_write_is_a_dead_letter_and_the_rest_are_delivered(warehouse):
    def send_batch(rows):
        return [
            WriteOutcome("rejected", 400, "email: invalid", "validation")
            if row.external_id == "2"
            else DELIVERED
            for row in rows
        ]

    report = drain(warehouse, "erp", "customer", None, "run-1", send_batch=send_batch, batch_size=4)
    assert statuses(warehouse) == {"sent": 5, "dead": 1}
    assert report.dead_letters[0]["external_id"] == "2"


def test_a_bulk_write_to_a_target_that_is_down_opens_the_breaker_for_the_rest(warehouse):
    sent = []

    def send_batch(rows):
        sent.append(len(rows))
        return [DOWN] * len(rows)

    report = drain(
        warehouse,
        "erp",
        "customer",
        None,
        "run-1",
        DrainPolicy(breaker_threshold=3),
        send_batch=send_batch,
        batch_size=4,
    )
    assert sent == [4] and report.breaker_open and report.deferred == 2
    assert statuses(warehouse) == {"failed": 4, "pending": 2}
