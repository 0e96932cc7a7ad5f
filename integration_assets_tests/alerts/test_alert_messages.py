"""What the alerts say and which ones go out: run failures, failed checks, dead letters, Slack JSON."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from integration_assets.streams.alert_flood import Alert, FloodGate
from integration_assets.streams.alert_messages import (
    CheckCursor,
    CheckEvaluation,
    DeadLetter,
    DeadLetterMemory,
    StepFailure,
    escalate_after_from_env,
    failed_check_alerts,
    first_line,
    keep_following,
    plan_dead_letter_alerts,
    read_check_cursor,
    read_dead_letter_cursor,
    run_failure_alert,
    slack_payload,
    write_check_cursor,
    write_dead_letter_cursor,
)

NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)
FOUR_HOURS = timedelta(hours=4)


# --- run failures --------------------------------------------------------------------------------


def test_a_run_failure_names_the_job_the_run_the_step_and_the_first_line_of_the_error():
    alert = run_failure_alert(
        "hourly_sync",
        "run-1",
        [
            StepFailure(
                "raw_storefront_orders",
                "StorefrontError: GET /orders.json answered 500\nTraceback...",
            )
        ],
        "Execution of run failed.",
    )
    assert alert.key == "run_failure:hourly_sync"
    assert alert.severity == "error"
    assert alert.text == (
        "Run `run-1` of job `hourly_sync` failed in step `raw_storefront_orders`: "
        "StorefrontError: GET /orders.json answered 500"
    )
    assert alert.fields["step"] == "raw_storefront_orders"
    assert "Traceback" not in alert.text


def test_several_failed_steps_are_counted_and_a_run_without_step_failures_says_so():
    several = run_failure_alert(
        "hourly_sync",
        "run-2",
        [StepFailure("a", "ValueError: x"), StepFailure("b", "KeyError: y")],
        None,
    )
    assert "in 2 steps, first `a`: ValueError: x" in several.text
    outside = run_failure_alert(
        "hourly_sync", "run-3", [], "\n  Run was canceled by the monitor\nmore"
    )
    assert "failed before or outside its steps: Run was canceled by the monitor" in outside.text
    assert outside.fields["step"] == "(none)"


def test_first_line_skips_blank_lines_and_shortens():
    assert first_line("\n\n  hello  \nworld") == "hello"
    assert first_line("x" * 300, limit=10) == "x" * 9 + "…"
    assert first_line(None) == ""


# --- failed checks -------------------------------------------------------------------------------


def evaluation(storage_id: int, passed: bool, **overrides) -> CheckEvaluation:
    values = dict(
        run_id="run-9",
        storage_id=storage_id,
        evaluated_at=1000.0 + storage_id,
        asset_key="staging/storefront/orders",
        check_name="totals_add_up",
        passed=passed,
        severity="ERROR",
        description="3 orders do not add up",
    )
    return CheckEvaluation(**{**values, **overrides})


def test_only_failed_checks_alert_in_the_order_they_were_evaluated_with_their_severity():
    alerts = failed_check_alerts(
        [
            evaluation(3, False, check_name="volume", severity="WARN", evaluated_at=2000.0),
            evaluation(1, True),
            evaluation(2, False, blocking=True),
        ]
    )
    assert [a.key for a in alerts] == [
        "check:staging/storefront/orders:totals_add_up",
        "check:staging/storefront/orders:volume",
    ]
    blocking, warning = alerts
    assert blocking.severity == "error"
    assert "failed in run `run-9`: 3 orders do not add up." in blocking.text
    assert "It is blocking" in blocking.text
    assert warning.severity == "warning"
    assert "blocking" not in warning.text


def test_a_check_without_a_description_is_explained_by_its_metadata():
    (alert,) = failed_check_alerts(
        [
            evaluation(
                1,
                False,
                description=None,
                metadata={"orders_in_mart": "10", "orders_current": "12"},
            )
        ]
    )
    assert "orders_in_mart: 10; orders_current: 12" in alert.text


def test_a_broken_health_promise_is_addressed_to_its_owner():
    (health,) = failed_check_alerts(
        [
            evaluation(
                1,
                False,
                asset_key="reporting/integration_health",
                check_name="dead_letters_open",
                metadata={"owners": "sales-ops@example.com", "broken": "1"},
            )
        ]
    )
    assert health.owner == "sales-ops@example.com"
    (gate,) = failed_check_alerts([evaluation(2, False)])
    assert gate.owner is None  # a check that names nobody: the alert goes out unaddressed


def test_the_check_cursor_round_trips_and_a_damaged_one_says_how_to_recover():
    cursor = CheckCursor(watermark=1234.5, runs={"run-1": "abc"}, flood={"version": 1, "keys": {}})
    assert read_check_cursor(write_check_cursor(cursor)) == cursor
    assert read_check_cursor(None) == CheckCursor()
    with pytest.raises(ValueError, match="reset the sensor's cursor"):
        read_check_cursor('{"watermark": "yesterday", "runs": {}}')
    with pytest.raises(ValueError, match="not a JSON object"):
        read_check_cursor("17")


def test_a_run_is_followed_while_unfinished_or_while_the_next_query_can_return_it():
    assert keep_following(finished=False, updated_at=0.0, now=10_000.0)
    assert keep_following(finished=True, updated_at=10_000.0 - 299, now=10_000.0)
    assert not keep_following(finished=True, updated_at=10_000.0 - 301, now=10_000.0)


# --- dead letters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    name: str
    email: str
    slack: str


class Registry:
    """The shape of integration_assets.contracts.ownership's registry, as far as escalation goes."""

    def __init__(self, owners: dict[tuple[str, str], Owner]) -> None:
        self.owners = owners
        self.asked: list[tuple[str, str]] = []

    def escalation_owner(self, target: str, entity: str) -> Owner:
        self.asked.append((target, entity))
        return self.owners[(target, entity)]


FINANCE = Owner("Finance Operations", "finance-ops@example.com", "#finance-ops")


def letter(
    n: int, target: str = "erp", entity: str = "invoice", age: timedelta = timedelta(minutes=5)
):
    return DeadLetter(
        idempotency_key=f"{target}:{entity}:{n}",
        target=target,
        entity=entity,
        external_id=f"INV-{n}",
        error_class="validation",
        target_message=f"customer {n} unknown\nfull body",
        dead_at=NOW - age,
    )


def plan(letters, memory=None, gate=None, now=NOW, registry=None, problem=None):
    gate = gate or FloodGate()
    memory = memory or DeadLetterMemory()
    alerts, memory = plan_dead_letter_alerts(
        letters, memory, gate, now, FOUR_HOURS, registry, problem
    )
    return alerts, memory, gate


def test_new_dead_letters_give_one_alert_per_target_and_entity_naming_the_first_few():
    letters = [letter(n) for n in range(7)] + [letter(1, target="crm", entity="account")]
    alerts, memory, _ = plan(letters)
    by_key = {a.key: a for a in alerts}
    assert set(by_key) == {"dead_letters:erp/invoice", "dead_letters:crm/account"}
    invoices = by_key["dead_letters:erp/invoice"]
    assert invoices.title == "7 new dead letters: erp/invoice"
    assert invoices.fields["dead_letters"] == "7"
    assert "• `INV-0` — validation: customer 0 unknown" in invoices.text
    assert "INV-4" in invoices.text and "INV-5" not in invoices.text
    assert "… and 2 more" in invoices.text
    assert "full body" not in invoices.text
    assert memory.alerted == {d.idempotency_key for d in letters}
    assert memory.escalated == frozenset()


def test_a_dead_letter_is_announced_once_and_forgotten_when_resolved_then_announced_if_it_dies_again():
    first = [letter(1)]
    _, memory, gate = plan(first)
    later = NOW + timedelta(minutes=30)
    again, memory, _ = plan(first, memory, gate, now=later)
    assert again == []
    _, memory, _ = plan([], memory, gate, now=later)  # resolved or retried: no longer open
    assert memory.alerted == frozenset()
    died_again, _, _ = plan(first, memory, gate, now=later)
    assert [a.title for a in died_again] == ["1 new dead letter: erp/invoice"]


def test_within_the_window_new_dead_letters_are_held_and_named_by_the_next_alert():
    _, memory, gate = plan([letter(1)])
    held, memory, gate = plan([letter(1), letter(2)], memory, gate, now=NOW + timedelta(minutes=5))
    assert held == []
    assert "erp:invoice:2" not in memory.alerted  # held back, not marked as announced
    released, memory, _ = plan(
        [letter(1), letter(2), letter(3)], memory, gate, now=NOW + timedelta(minutes=15)
    )
    (alert,) = released
    assert alert.title == "2 new dead letters: erp/invoice"
    assert "INV-2" in alert.text and "INV-3" in alert.text and "INV-1" not in alert.text
    assert alert.suppressed == 0


def test_dead_letters_open_too_long_are_escalated_once_to_the_registry_owner():
    old = letter(1, age=timedelta(hours=5))
    registry = Registry({("erp", "invoice"): FINANCE})
    alerts, memory, gate = plan([old, letter(2)], registry=registry)
    by_key = {a.key: a for a in alerts}
    escalation = by_key["dead_letter_escalation:erp/invoice"]
    assert escalation.severity == "critical"
    assert escalation.owner == "Finance Operations"
    assert escalation.fields["owner_email"] == "finance-ops@example.com"
    assert escalation.title == "Escalation: 1 dead letter open for more than 4h: erp/invoice"
    assert (
        "Escalated to Finance Operations <finance-ops@example.com> (#finance-ops)"
        in escalation.text
    )
    assert "`INV-1` dead for 5h 00m" in escalation.text
    # The old one is escalated, not also announced as new; the recent one is announced.
    assert "INV-1" not in by_key["dead_letters:erp/invoice"].text
    assert memory.escalated == {"erp:invoice:1"}
    assert registry.asked == [("erp", "invoice")]

    again, memory, _ = plan(
        [old, letter(2)], memory, gate, now=NOW + timedelta(hours=2), registry=registry
    )
    assert again == []
    assert memory.escalated == {"erp:invoice:1"}


def test_an_escalation_goes_out_unaddressed_when_the_registry_names_nobody():
    class Unknown:
        def escalation_owner(self, target, entity):
            raise KeyError(f"no delivery {target}/{entity}")

    old = letter(1, target="wms", entity="pick_list", age=timedelta(hours=9))
    (alert,) = plan([old], registry=Unknown())[0]
    assert alert.owner is None
    assert "No owner to escalate to (KeyError: 'no delivery wms/pick_list')" in alert.text

    (missing,) = plan([old], registry=None, problem="the ownership registry did not load")[0]
    assert "the ownership registry did not load" in missing.text


def test_the_escalation_age_comes_from_the_environment_and_nonsense_is_refused():
    assert escalate_after_from_env({}) == FOUR_HOURS
    assert escalate_after_from_env({"DEAD_LETTER_ESCALATE_AFTER_HOURS": "1.5"}) == timedelta(
        minutes=90
    )
    for bad in ("0", "-2", "soon", "inf", "nan"):
        with pytest.raises(ValueError, match="DEAD_LETTER_ESCALATE_AFTER_HOURS must be a positive"):
            escalate_after_from_env({"DEAD_LETTER_ESCALATE_AFTER_HOURS": bad})


def test_the_dead_letter_cursor_round_trips_and_refuses_garbage():
    memory = DeadLetterMemory(alerted=frozenset({"a", "b"}), escalated=frozenset({"a"}))
    text = write_dead_letter_cursor(memory, {"version": 1, "keys": {}})
    assert read_dead_letter_cursor(text) == (memory, {"version": 1, "keys": {}})
    assert read_dead_letter_cursor("") == (DeadLetterMemory(), None)
    with pytest.raises(ValueError, match="list of idempotency keys"):
        read_dead_letter_cursor(json.dumps({"alerted": "a"}))


# --- Slack-compatible payload --------------------------------------------------------------------


def test_the_slack_payload_has_fallback_text_a_mrkdwn_section_and_a_context_with_key_and_owner():
    alert = Alert(
        key="check:a:b",
        title="Check failed: <a> & b",
        text="reason <script>",
        severity="warning",
        owner="Finance Operations",
        fields={"asset": "a"},
        suppressed=3,
    )
    payload = slack_payload(alert)
    assert payload["text"] == "[WARNING] Check failed: <a> & b"
    section, fields, context = payload["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert (
        section["text"]["text"]
        == ":warning: *Check failed: &lt;a&gt; &amp; b*\nreason &lt;script&gt;"
    )
    assert fields["fields"] == [{"type": "mrkdwn", "text": "*asset*\na"}]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        "key `check:a:b` · owner Finance Operations · warning · 3 similar suppressed"
    )


def test_the_slack_payload_stays_within_slacks_limits():
    alert = Alert(key="k", title="t", text="x" * 10_000, fields={f"f{n}": "v" for n in range(15)})
    payload = slack_payload(alert)
    assert len(payload["blocks"][0]["text"]["text"]) == 3000
    assert len(payload["blocks"][1]["fields"]) == 10
    assert "owner unassigned" in payload["blocks"][2]["elements"][0]["text"]
