"""The operator's commands on a real delivery: list, show, edit-and-retry, resolve, approve, reject."""

import json

import pytest

from integration_assets.cli import main
from integration_assets.storage import outbox as store


@pytest.fixture
def delivered(stack, tmp_path, monkeypatch):
    """The stack after one delivery, with the CLI pointed at its warehouse."""
    stack.deliver()
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(tmp_path))
    return stack


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dlq_list_names_each_dead_letter_with_the_targets_words(delivered, capsys):
    code, out, _ = cli(capsys, "dlq", "list", "--target", "erp")
    assert code == 0
    assert "erp/customer/300000004#" in out and "validation" in out and "email" in out
    code, out, _ = cli(capsys, "dlq", "list", "--json")
    rows = json.loads(out)
    assert {row["target"] for row in rows} == {"erp", "crm"}  # both refuse the mistyped email


def test_edit_and_retry_from_the_cli_delivers_once_and_is_audited(delivered, capsys):
    code, out, _ = cli(capsys, "dlq", "list", "--target", "erp", "--entity", "customer", "--json")
    (letter,) = json.loads(out)
    prefix = letter["idempotency_key"][:30]
    code, _, err = cli(
        capsys, "dlq", "retry", prefix, "--set", "email=dara.okafor@example.com", "--by", "lena"
    )
    assert code == 1 and "reason" in err  # an edit needs a reason
    edit = ("dlq", "retry", prefix, "--set", "email=dara.okafor@example.com", "--by", "lena")
    # the email belongs to the storefront: without its owner's agreement nothing changes
    code, out, err = cli(capsys, *edit, "--reason", "typo")
    assert code == 1 and out == ""
    assert (
        "email is owned by the storefront (Customer Service, customer-service@example.com): "
        "correct it there, the next sync carries it; or, if its owner agreed, repeat with "
        "--owner-approved-by customer-service@example.com"
    ) in err
    code, out, err = cli(
        capsys, *edit, "--reason", "typo", "--owner-approved-by", "sales-ops@example.com"
    )
    assert code == 1 and "'sales-ops@example.com' is not its registered owner" in err
    code, out, _ = cli(capsys, "dlq", "show", prefix)
    assert json.loads(out)["status"] == "dead" and json.loads(out)["operator_actions"] == []
    code, out, _ = cli(
        capsys, *edit, "--reason", "typo", "--owner-approved-by", "customer-service@example.com"
    )
    assert code == 0 and "pending again with 1 field edit" in out
    customers = delivered.erp_documents()["customer"]
    delivered.deliver()
    assert delivered.erp_documents()["customer"] == customers + 1
    code, out, _ = cli(capsys, "dlq", "show", prefix)
    shown = json.loads(out)
    assert shown["status"] == "sent" and shown["override"] == {"email": "dara.okafor@example.com"}
    assert [action["action"] for action in shown["operator_actions"]] == ["edit_and_retry"]
    assert shown["operator_actions"][0]["actor"] == "lena"
    details = json.loads(shown["operator_actions"][0]["details"])
    assert details["owner_approved_by"] == "customer-service@example.com"
    assert details["owner_approvals"] == [
        {
            "field": "email",
            "attribute": "customer.email",
            "system_of_record": "storefront",
            "owner": "customer_service",
            "owner_email": "customer-service@example.com",
            "approved_by": "customer-service@example.com",
        }
    ]


def test_resolve_by_hand_closes_the_letter_and_keeps_it(delivered, capsys):
    code, out, _ = cli(capsys, "dlq", "list", "--target", "crm", "--json")
    (letter,) = json.loads(out)
    code, out, _ = cli(
        capsys,
        "dlq",
        "resolve",
        letter["idempotency_key"],
        "--by",
        "sam",
        "--reason",
        "fixed in the CRM by hand",
    )
    assert code == 0
    code, out, _ = cli(capsys, "dlq", "list", "--target", "crm")
    assert "no open dead letters" in out
    code, out, _ = cli(capsys, "dlq", "list", "--target", "crm", "--all")
    assert letter["idempotency_key"] in out and "resolved by sam" in out


def test_approve_and_reject_need_a_person_and_a_reason(delivered, capsys):
    code, out, _ = cli(capsys, "approvals", "list", "--json")
    (waiting,) = json.loads(out)
    assert waiting["approval_rule"] == "credit_note_over_threshold"
    with pytest.raises(SystemExit):
        main(["approvals", "approve", waiting["idempotency_key"], "--by", "maria"])  # no --reason
    capsys.readouterr()
    code, out, _ = cli(
        capsys,
        "approvals",
        "reject",
        waiting["idempotency_key"],
        "--by",
        "maria",
        "--reason",
        "duplicate",
    )
    assert code == 0 and "rejected" in out
    code, _, err = cli(
        capsys,
        "approvals",
        "approve",
        waiting["idempotency_key"],
        "--by",
        "maria",
        "--reason",
        "oops",
    )
    assert code == 1 and "not awaiting approval" in err
    credit_notes = delivered.erp_documents()["credit_note"]
    delivered.deliver()
    assert (
        delivered.erp_documents()["credit_note"] == credit_notes
    )  # a rejected write is never sent
    with delivered.warehouse.connect() as con:
        assert [a["action"] for a in store.actions(con)] == ["reject"]


def test_an_unknown_key_is_a_sentence_not_a_traceback(delivered, capsys):
    code, _, err = cli(capsys, "dlq", "show", "no-such-key")
    assert code == 1 and "no outbox row whose idempotency key starts with 'no-such-key'" in err


def test_a_credit_limit_change_needs_a_second_person_then_reaches_the_erp(delivered, capsys):
    code, out, _ = cli(
        capsys,
        "credit-limit",
        "request",
        "207119551",
        "7500.00",
        "--by",
        "sam",
        "--reason",
        "wholesale terms agreed",
    )
    assert code == 0 and "awaits approval" in out
    key = out.split()[0]
    code, _, err = cli(capsys, "approvals", "approve", key, "--by", "sam", "--reason", "ok")
    assert code == 1 and "four eyes" in err
    code, out, _ = cli(
        capsys, "approvals", "approve", key, "--by", "maria", "--reason", "checked with finance"
    )
    assert code == 0
    delivered.deliver()
    (customer,) = [
        d
        for d in delivered.systems.erp.app.documents("customer")
        if d["external_id"] == "207119551"
    ]
    assert customer["record"]["credit_limit"] == "7500.00"
    with delivered.warehouse.connect() as con:
        assert [(a["actor"], a["action"]) for a in store.actions(con, key)] == [
            ("sam", "request"),
            ("maria", "approve"),
        ]


def test_report_json_balances_promoted_against_delivered_dead_awaiting_pending(delivered, capsys):
    code, out, _ = cli(capsys, "report", "--json", "--no-instance")
    report = json.loads(out)
    books = report["outbox"]["books"]
    assert {"erp/customer", "erp/sales_order", "crm/account", "wms/reservation"} <= set(books)
    for pair, book in books.items():
        right = book["right"]
        assert book["holds"], (pair, book["text"])
        assert book["left"]["promoted"] == sum(right.values())
    assert books["erp/customer"]["right"]["dead_lettered"] == 1
    assert books["erp/credit_note"]["right"]["awaiting_approval"] == 1
    assert report["all_balances_hold"] is True
    assert any(balance["asset_key"] == "ops/outbox" for balance in report["balances"])
