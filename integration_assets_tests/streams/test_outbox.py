"""The outbox's rules: what is enqueued, what an attempt does, and that the books always balance."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams import outbox as rules


def intent(external_id: str, version: int, approval: str | None = None) -> rules.WriteIntent:
    return rules.WriteIntent(
        "erp", "customer", external_id, {"name": f"v{version}"}, f"core:{external_id}", approval
    )


def test_new_content_is_enqueued_once_and_the_same_content_never_again():
    first = rules.plan_enqueue([intent("c1", 1)], {})
    assert first.enqueued == 1 and first.new_rows[0].status == rules.PENDING
    row = first.new_rows[0]
    heads = {
        ("erp", "customer", "c1"): rules.OutboxHead(
            row.idempotency_key, row.intent.content_hash, 1, rules.SENT
        )
    }
    again = rules.plan_enqueue([intent("c1", 1)], heads, {row.idempotency_key})
    assert again.enqueued == 0 and again.unchanged == 1


def test_the_idempotency_key_names_the_record_and_its_content():
    plan = rules.plan_enqueue([intent("c1", 1)], {})
    key = plan.new_rows[0].idempotency_key
    assert key.startswith("erp/customer/c1#")
    assert key.split("#")[1] == plan.new_rows[0].intent.content_hash[:20]


def test_newer_content_supersedes_an_open_row_but_not_a_sent_one():
    old = rules.plan_enqueue([intent("c1", 1)], {}).new_rows[0]
    for status, superseded in (
        (rules.PENDING, True),
        (rules.FAILED, True),
        (rules.SENT, False),
        (rules.DEAD, False),
    ):
        heads = {
            ("erp", "customer", "c1"): rules.OutboxHead(
                old.idempotency_key, old.intent.content_hash, 1, status
            )
        }
        plan = rules.plan_enqueue([intent("c1", 2)], heads, {old.idempotency_key})
        assert plan.enqueued == 1 and plan.new_rows[0].sequence == 2
        assert plan.superseded_keys == ([old.idempotency_key] if superseded else [])


def test_content_that_returns_to_an_earlier_version_is_sent_again_under_a_new_key():
    a = rules.plan_enqueue([intent("c1", 1)], {}).new_rows[0]
    heads = {
        ("erp", "customer", "c1"): rules.OutboxHead("erp/customer/c1#b", "hash-of-b", 2, rules.SENT)
    }
    plan = rules.plan_enqueue([intent("c1", 1)], heads, {a.idempotency_key, "erp/customer/c1#b"})
    assert plan.enqueued == 1
    assert plan.new_rows[0].idempotency_key == f"{a.idempotency_key}~3"


def test_a_high_stakes_write_waits_for_approval():
    plan = rules.plan_enqueue([intent("c1", 1, approval="credit_limit_change")], {})
    assert plan.new_rows[0].status == rules.AWAITING_APPROVAL and plan.awaiting_approval == 1


def test_two_intents_for_one_record_in_one_pass_fail_loudly():
    with pytest.raises(ValueError, match="two intents for erp/customer/c1"):
        rules.plan_enqueue([intent("c1", 1), intent("c1", 2)], {})


@pytest.mark.parametrize(
    ("outcome", "attempts_before", "status", "error_class"),
    [
        ("delivered", 0, rules.SENT, None),
        ("rejected", 0, rules.DEAD, "validation"),
        ("conflict", 0, rules.DEAD, "conflict"),
        ("unavailable", 0, rules.FAILED, "server_error"),
        ("missing_reference", 0, rules.FAILED, "missing_reference"),
        ("unavailable", 4, rules.DEAD, "retries_exhausted"),
    ],
)
def test_after_an_attempt(outcome, attempts_before, status, error_class):
    given_class = {
        "rejected": "validation",
        "conflict": "conflict",
        "unavailable": "server_error",
    }.get(outcome, "missing_reference" if outcome == "missing_reference" else None)
    transition = rules.after_attempt(
        attempts_before, outcome, 503, "the target's words", given_class, "ERP-1", 5
    )
    assert transition.status == status
    assert transition.error_class == error_class
    assert transition.attempts == attempts_before + 1
    if status == rules.DEAD:
        assert "the target's words" in transition.target_message


def test_an_unknown_outcome_is_an_error_not_a_silent_success():
    with pytest.raises(ValueError, match="unknown delivery outcome"):
        rules.after_attempt(0, "maybe", None, "", None, None, 5)


def test_operator_override_sets_nested_fields_and_removes_with_none():
    payload = {
        "name": "Ada",
        "billing_address": {"country": "US", "postal_code": "bad"},
        "phone": "1",
    }
    edited = rules.apply_override(payload, {"billing_address.postal_code": "04101", "phone": None})
    assert edited == {"name": "Ada", "billing_address": {"country": "US", "postal_code": "04101"}}
    assert (
        payload["billing_address"]["postal_code"] == "bad"
    )  # the mapped payload is kept as it was


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 3),
            st.sampled_from(["delivered", "rejected", "unavailable", None]),
        ),
        max_size=40,
    )
)
def test_the_books_balance_for_any_history(history):
    """Any sequence of intents and attempt outcomes: every enqueued row is in exactly one status."""
    rows: dict[str, dict] = {}
    heads: dict = {}
    enqueued = 0
    for external_id, version, outcome in history:
        plan = rules.plan_enqueue([intent(external_id, version)], heads, set(rows))
        for key in plan.superseded_keys:
            rows[key]["status"] = rules.SUPERSEDED
        for new in plan.new_rows:
            assert new.idempotency_key not in rows
            rows[new.idempotency_key] = {
                "status": new.status,
                "attempts": 0,
                "hash": new.intent.content_hash,
                "seq": new.sequence,
            }
            enqueued += 1
            heads[("erp", "customer", external_id)] = rules.OutboxHead(
                new.idempotency_key, new.intent.content_hash, new.sequence, new.status
            )
        head = heads.get(("erp", "customer", external_id))
        if outcome and head and rows[head.idempotency_key]["status"] in rules.DUE_STATUSES:
            row = rows[head.idempotency_key]
            transition = rules.after_attempt(row["attempts"], outcome, None, "m", None, None, 3)
            row.update(status=transition.status, attempts=transition.attempts)
            heads[("erp", "customer", external_id)] = rules.OutboxHead(
                head.idempotency_key, head.payload_hash, head.sequence, transition.status
            )
        open_rows = Counter(
            key.split("#")[0] for key, row in rows.items() if row["status"] in rules.OPEN_STATUSES
        )
        assert all(
            count <= 1 for count in open_rows.values()
        )  # never two open writes for one record
    balance = rules.outbox_books(Counter(row["status"] for row in rows.values()), enqueued)
    assert balance.holds, balance.as_text()
