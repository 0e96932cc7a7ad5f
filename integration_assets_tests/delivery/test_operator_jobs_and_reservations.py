"""The operator jobs (replay dead letters with filters, review approvals) and reservations over time."""

from datetime import timedelta

import dagster as dg

from integration_assets.defs.delivery.jobs import replay_dead_letters, review_approvals
from integration_assets.storage import outbox as store
from integration_assets_tests.delivery.conftest import delivery_scenario, open_stack

RESOURCE_KEYS = ("erp", "crm", "wms", "warehouse")


def run_job(stack, job, config: dict) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        run_config={"ops": config},
        resources={key: stack.resources[key] for key in RESOURCE_KEYS},
        instance=stack.instance,
        raise_on_error=False,
    )


def test_replay_with_filters_queues_only_the_matching_letters_and_delivers_them(stack):
    stack.deliver()
    with stack.warehouse.transaction() as con:
        (erp_letter,) = store.list_rows(con, status="dead", target="erp", open_only=True)
        # the cause is fixed where it belongs: the storefront's email, reflected in the mapped payload
        con.execute(
            "UPDATE ops.outbox SET override = ? WHERE idempotency_key = ?",
            ['{"email": "dara.okafor@example.com"}', erp_letter["idempotency_key"]],
        )
    customers = stack.erp_documents()["customer"]
    config = {
        "operator": "lena",
        "reason": "email fixed",
        "target": "erp",
        "error_class": "validation",
    }
    result = run_job(
        stack, replay_dead_letters, {"replay_matching_dead_letters": {"config": config}}
    )
    assert result.success
    assert result.output_for_node("replay_matching_dead_letters")["erp/customer"]["delivered"] == 1
    assert stack.erp_documents()["customer"] == customers + 1
    with stack.warehouse.connect() as con:
        assert store.get_row(con, erp_letter["idempotency_key"])["status"] == "sent"
        (crm_letter,) = store.list_rows(
            con, status="dead", open_only=True
        )  # the filter left the CRM's alone
        assert crm_letter["target"] == "crm"
        actions = store.actions(con, erp_letter["idempotency_key"])
    assert [(a["actor"], a["action"], a["reason"]) for a in actions] == [
        ("lena", "retry", "email fixed")
    ]


def test_review_approvals_records_each_decision_and_delivers_the_approved(stack):
    stack.deliver()
    with stack.warehouse.connect() as con:
        (waiting,) = store.list_rows(con, status="awaiting_approval")
    credit_notes = stack.erp_documents()["credit_note"]
    config = {
        "decided_by": "maria",
        "decisions": [
            {"key": waiting["idempotency_key"][:32], "approve": True, "reason": "return received"}
        ],
    }
    result = run_job(stack, review_approvals, {"apply_approval_decisions": {"config": config}})
    assert result.success
    assert stack.erp_documents()["credit_note"] == credit_notes + 1
    with stack.warehouse.connect() as con:
        row = store.get_row(con, waiting["idempotency_key"])
        assert (row["status"], row["decided_by"], row["decision_reason"]) == (
            "sent",
            "maria",
            "return received",
        )


def lines(reservation: dict) -> dict[str, int]:
    return {line["sku"]: line["quantity"] for line in reservation["lines"]}


def test_a_reservation_is_made_when_paid_and_adjusted_when_edited_or_shipped(tmp_path):
    with open_stack(tmp_path, delivery_scenario(tmp_path), hours=1) as stack:
        stack.deliver()  # +1h: `happy_path` and `edited` are paid; nothing shipped or edited yet
        before = {r["reservation_id"]: r for r in stack.systems.wms.reservations()}
        stack.systems.clock.advance(timedelta(hours=11))
        stack.run("orders", "payments", "finance", "customers")
        stack.deliver()  # +12h: `edited` changed its lines, `happy_path` shipped
        after = {r["reservation_id"]: r for r in stack.systems.wms.reservations()}
        stack.deliver()  # the same state again
        again = {r["reservation_id"]: r for r in stack.systems.wms.reservations()}
    assert set(before) == {"RES-5100001000", "RES-5100002000"}
    assert lines(before["RES-5100002000"]) == {"CASE-SLIM": 1, "IPOD2008RED": 2}
    # edited: one red iPod less, the case removed, a green iPod added: the same reservation, version 2
    assert after["RES-5100002000"]["version"] == 2
    assert lines(after["RES-5100002000"]) == {"CASE-SLIM": 0, "IPOD2008GREEN": 1, "IPOD2008RED": 1}
    # shipped: nothing left to hold
    assert lines(after["RES-5100001000"]) == {"CASE-SLIM": 0, "IPOD2008GREEN": 0}
    # orders paid later get theirs; an authorized-then-cancelled order never had one to release
    assert "RES-5100003000" not in after and len(after) == 5
    assert {rid: r["version"] for rid, r in again.items()} == {
        rid: r["version"] for rid, r in after.items()
    }
