"""What to alert about and what the alert says: run failures, failed checks, dead letters.

Pure functions, no Dagster: the sensors in `integration_assets/defs/alerts/` turn Dagster's events
and the outbox rows into the plain records below and post what these functions return. Keeping the
decisions here means the wording, the grouping and the "escalate each dead letter once" rule are
tested without an instance.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from integration_assets.health.metrics import CHECK_OWNERS_METADATA
from integration_assets.streams.alert_flood import (
    SEVERITY_CRITICAL,
    SEVERITY_ERROR,
    SEVERITY_INFO,
    SEVERITY_WARNING,
    Alert,
    FloodGate,
)

DEFAULT_ESCALATE_AFTER = timedelta(hours=4)
ESCALATE_AFTER_ENV = "DEAD_LETTER_ESCALATE_AFTER_HOURS"
LISTED_PER_ALERT = 5  # dead letters named in one alert; the rest are counted
LINE_CHARS = 200

# Slack's limits (api.slack.com/reference/block-kit/blocks): a section's text, a field's text,
# the number of fields in a section.
SLACK_SECTION_CHARS = 3000
SLACK_FIELD_CHARS = 2000
SLACK_MAX_FIELDS = 10
SLACK_EMOJI = {
    SEVERITY_INFO: ":information_source:",
    SEVERITY_WARNING: ":warning:",
    SEVERITY_ERROR: ":red_circle:",
    SEVERITY_CRITICAL: ":rotating_light:",
}


def first_line(text: str | None, limit: int = LINE_CHARS) -> str:
    """The first non-empty line, shortened: an alert names the problem, the UI has the traceback."""
    for line in (text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g}h"


# --- run failures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    message: str  # the error as the user's code raised it (not Dagster's wrapper)


def run_failure_key(job_name: str) -> str:
    return f"run_failure:{job_name}"


def run_failure_alert(
    job_name: str, run_id: str, step_failures: Sequence[StepFailure], run_message: str | None
) -> Alert:
    """One alert per failed run: the job, the run, the failing step and the first line of its error."""
    if step_failures:
        first = step_failures[0]
        error = first_line(first.message) or "no error message"
        where = (
            f"step `{first.step_key}`"
            if len(step_failures) == 1
            else f"{len(step_failures)} steps, first `{first.step_key}`"
        )
        text = f"Run `{run_id}` of job `{job_name}` failed in {where}: {error}"
        step = first.step_key
    else:
        # The run failed outside any step (launch, resource init, a dequeue timeout...).
        error = first_line(run_message) or "no error message"
        text = f"Run `{run_id}` of job `{job_name}` failed before or outside its steps: {error}"
        step = "(none)"
    return Alert(
        key=run_failure_key(job_name),
        title=f"Run failed: {job_name}",
        text=text,
        severity=SEVERITY_ERROR,
        fields={"job": job_name, "run_id": run_id, "step": step, "error": error},
    )


# --- asset checks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckEvaluation:
    """One asset-check evaluation as a run's event log stored it."""

    run_id: str
    storage_id: int  # orders events within the run (SQLite storage numbers each run on its own)
    evaluated_at: float  # epoch seconds; orders events across runs
    asset_key: str  # user string, e.g. "staging/storefront/orders"
    check_name: str
    passed: bool
    severity: str  # Dagster's AssetCheckSeverity value: "ERROR" or "WARN"
    description: str | None = None
    blocking: bool | None = None
    partition: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def check_alert_key(asset_key: str, check_name: str) -> str:
    return f"check:{asset_key}:{check_name}"


def failed_check_alert(evaluation: CheckEvaluation) -> Alert:
    """What a failed check tells the operator: which gate, why, and whether it holds promotion."""
    severity = SEVERITY_WARNING if evaluation.severity == "WARN" else SEVERITY_ERROR
    reason = evaluation.description or "; ".join(
        f"{name}: {value}" for name, value in list(evaluation.metadata.items())[:5]
    )
    effect = (
        " It is blocking: downstream assets are not materialized until it passes."
        if evaluation.blocking
        else ""
    )
    where = f" (partition {evaluation.partition})" if evaluation.partition else ""
    fields = {
        "asset": evaluation.asset_key,
        "check": evaluation.check_name,
        "severity": evaluation.severity,
        "run_id": evaluation.run_id,
    }
    if evaluation.partition:
        fields["partition"] = evaluation.partition
    return Alert(
        key=check_alert_key(evaluation.asset_key, evaluation.check_name),
        title=f"Check failed: {evaluation.asset_key} {evaluation.check_name}",
        text=(
            f"`{evaluation.check_name}` on `{evaluation.asset_key}`{where} failed in run "
            f"`{evaluation.run_id}`: {first_line(reason, 500) or 'no reason given'}.{effect}"
        ),
        severity=severity,
        # A check that names whose promise it found broken (the health checks) is addressed to them.
        owner=evaluation.metadata.get(CHECK_OWNERS_METADATA) or None,
        fields=fields,
    )


def failed_check_alerts(evaluations: Sequence[CheckEvaluation]) -> list[Alert]:
    """An alert per failed evaluation, oldest first; passed ones say nothing."""
    ordered = sorted(evaluations, key=lambda e: (e.evaluated_at, e.run_id, e.storage_id))
    return [failed_check_alert(evaluation) for evaluation in ordered if not evaluation.passed]


# Runs last updated this long before the previous tick are looked at again, so a run updated
# while a tick ran, or a clock a little off between the daemon and the database, is not missed.
RUN_OVERLAP = timedelta(minutes=5)


@dataclass(frozen=True)
class CheckCursor:
    """Where `alert_on_failed_checks` stands.

    Dagster's default SQLite storage numbers events per run (there is no instance-wide storage id
    to resume from), so the cursor keeps, per run, the event-log cursor inside that run, for
    every run that is unfinished or was updated within `RUN_OVERLAP` of the last tick.
    """

    watermark: float | None = None  # epoch seconds of the previous tick; None before the first
    runs: dict[str, str] = field(default_factory=dict)  # run id -> event-log cursor in that run
    flood: dict[str, Any] | None = None


def keep_following(finished: bool, updated_at: float, now: float) -> bool:
    """Follow a run while it can still log evaluations, or while the next tick's query returns it
    (then its saved cursor keeps the evaluations already alerted on from being read again)."""
    return not finished or updated_at >= now - RUN_OVERLAP.total_seconds()


def read_check_cursor(cursor: str | None) -> CheckCursor:
    if not cursor:
        return CheckCursor()
    data = _json_object(cursor, "alert_on_failed_checks")
    watermark, runs = data.get("watermark"), data.get("runs")
    if (
        isinstance(watermark, bool)
        or not isinstance(watermark, int | float)
        or not isinstance(runs, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in runs.items())
    ):
        raise ValueError(
            "alert_on_failed_checks cursor: expected a numeric 'watermark' and 'runs' mapping run "
            "ids to event cursors; reset the sensor's cursor in the UI to start from now"
        )
    return CheckCursor(watermark=float(watermark), runs=dict(runs), flood=data.get("flood"))


def write_check_cursor(cursor: CheckCursor) -> str:
    return json.dumps(
        {"watermark": cursor.watermark, "runs": cursor.runs, "flood": cursor.flood},
        sort_keys=True,
    )


# --- dead letters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """An open dead letter: a write to a working system that gave up and waits for an operator."""

    idempotency_key: str
    target: str
    entity: str
    external_id: str
    error_class: str | None
    target_message: str | None
    dead_at: datetime  # timezone-aware


class EscalationOwner(Protocol):
    name: str
    email: str
    slack: str


class OwnershipRegistry(Protocol):
    """What `integration_assets.contracts.ownership.load_ownership()` returns, as far as alerts care."""

    def escalation_owner(self, target: str, entity: str) -> EscalationOwner: ...


@dataclass(frozen=True)
class DeadLetterMemory:
    """Which open dead letters were already announced, and which already escalated (by idempotency key)."""

    alerted: frozenset[str] = frozenset()
    escalated: frozenset[str] = frozenset()


def dead_letter_key(target: str, entity: str) -> str:
    return f"dead_letters:{target}/{entity}"


def escalation_key(target: str, entity: str) -> str:
    return f"dead_letter_escalation:{target}/{entity}"


def _grouped(letters: Sequence[DeadLetter]) -> dict[tuple[str, str], list[DeadLetter]]:
    groups: dict[tuple[str, str], list[DeadLetter]] = defaultdict(list)
    for letter in sorted(letters, key=lambda d: (d.target, d.entity, d.dead_at, d.external_id)):
        groups[(letter.target, letter.entity)].append(letter)
    return dict(groups)


def _letter_line(letter: DeadLetter, now: datetime | None = None) -> str:
    problem = ": ".join(
        part for part in (letter.error_class, first_line(letter.target_message, 160)) if part
    )
    age = f" dead for {_age(now - letter.dead_at)}" if now is not None else ""
    return f"• `{letter.external_id}`{age} — {problem or 'no error recorded'}"


def _listing(letters: Sequence[DeadLetter], now: datetime | None = None) -> str:
    lines = [_letter_line(letter, now) for letter in letters[:LISTED_PER_ALERT]]
    if len(letters) > LISTED_PER_ALERT:
        lines.append(f"… and {len(letters) - LISTED_PER_ALERT} more (ops.outbox, status 'dead')")
    return "\n".join(lines)


def new_dead_letters_alert(target: str, entity: str, letters: Sequence[DeadLetter]) -> Alert:
    count = len(letters)
    return Alert(
        key=dead_letter_key(target, entity),
        title=f"{count} new dead letter{'s' if count != 1 else ''}: {target}/{entity}",
        text=(
            f"{count} write{'s' if count != 1 else ''} to {target} ({entity}) gave up and wait for an "
            f"operator to retry, edit or resolve:\n{_listing(letters)}"
        ),
        severity=SEVERITY_ERROR,
        fields={
            "target": target,
            "entity": entity,
            "dead_letters": str(count),
            "first_dead_at": letters[0].dead_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
    )


def owner_lookup(
    registry: OwnershipRegistry | None, registry_problem: str | None = None
) -> Callable[[str, str], tuple[EscalationOwner | None, str | None]]:
    """(owner, None) or (None, why there is none) for a (target, entity).

    An escalation never waits on the registry: a missing entry or a registry that did not load
    still sends the escalation, unaddressed, with the reason in it.
    """

    def lookup(target: str, entity: str) -> tuple[EscalationOwner | None, str | None]:
        if registry is None:
            return None, registry_problem or "no ownership registry"
        try:
            owner = registry.escalation_owner(target, entity)
        except Exception as error:  # noqa: BLE001 - whatever the registry raises, the alert goes out
            return None, f"{type(error).__name__}: {first_line(str(error), 160)}"
        if owner is None:
            return None, f"the ownership registry names no owner for {target}/{entity}"
        return owner, None

    return lookup


def escalation_alert(
    target: str,
    entity: str,
    letters: Sequence[DeadLetter],
    owner: EscalationOwner | None,
    owner_problem: str | None,
    escalate_after: timedelta,
    now: datetime,
) -> Alert:
    count = len(letters)
    if owner is not None:
        addressed = f"Escalated to {owner.name} <{owner.email}> ({owner.slack}), owner of {target}/{entity}."
        fields = {"owner_email": owner.email, "owner_slack": owner.slack}
    else:
        addressed = (
            f"No owner to escalate to ({owner_problem}): whoever reads this, please take it."
        )
        fields = {}
    return Alert(
        key=escalation_key(target, entity),
        title=(
            f"Escalation: {count} dead letter{'s' if count != 1 else ''} open for more than "
            f"{_hours(escalate_after)}: {target}/{entity}"
        ),
        text=f"{addressed}\n{_listing(letters, now)}",
        severity=SEVERITY_CRITICAL,
        owner=owner.name if owner is not None else None,
        fields={
            "target": target,
            "entity": entity,
            "dead_letters": str(count),
            "oldest_dead_for": _age(now - letters[0].dead_at),
            **fields,
        },
    )


def plan_dead_letter_alerts(
    open_letters: Sequence[DeadLetter],
    memory: DeadLetterMemory,
    gate: FloodGate,
    now: datetime,
    escalate_after: timedelta,
    registry: OwnershipRegistry | None,
    registry_problem: str | None = None,
) -> tuple[list[Alert], DeadLetterMemory]:
    """The alerts to post for the open dead letters now, and what to remember for the next tick.

    Per (target, entity): one alert for the dead letters not announced before, and one escalation,
    addressed to the registry's owner, for those open longer than `escalate_after` and not escalated
    before. A dead letter due for escalation is not also announced as new (the escalation says
    more). When the flood gate is closed for a group, its dead letters are held, not counted, so the
    next alert after the window names them all: the operator learns which writes died, not just how
    many alerts were skipped. Memory keeps only open dead letters, so it stays as small as the
    dead-letter queue, and one retried that dies again is announced again.
    """
    open_keys = {letter.idempotency_key for letter in open_letters}
    alerted = set(memory.alerted & open_keys)
    escalated = set(memory.escalated & open_keys)
    lookup = owner_lookup(registry, registry_problem)
    alerts: list[Alert] = []

    due = [
        letter
        for letter in open_letters
        if letter.idempotency_key not in escalated and now - letter.dead_at >= escalate_after
    ]
    due_keys = {letter.idempotency_key for letter in due}
    for (target, entity), letters in _grouped(due).items():
        if not gate.is_open(escalation_key(target, entity), now):
            continue
        owner, problem = lookup(target, entity)
        alert = escalation_alert(target, entity, letters, owner, problem, escalate_after, now)
        admitted = gate.admit(alert, now)
        if admitted is not None:
            alerts.append(admitted)
            escalated.update(letter.idempotency_key for letter in letters)
            alerted.update(letter.idempotency_key for letter in letters)

    fresh = [
        letter
        for letter in open_letters
        if letter.idempotency_key not in alerted
        and letter.idempotency_key not in escalated
        and letter.idempotency_key not in due_keys
    ]
    for (target, entity), letters in _grouped(fresh).items():
        if not gate.is_open(dead_letter_key(target, entity), now):
            continue
        admitted = gate.admit(new_dead_letters_alert(target, entity, letters), now)
        if admitted is not None:
            alerts.append(admitted)
            alerted.update(letter.idempotency_key for letter in letters)

    return alerts, DeadLetterMemory(alerted=frozenset(alerted), escalated=frozenset(escalated))


def escalate_after_from_env(environ: Mapping[str, str]) -> timedelta:
    """`DEAD_LETTER_ESCALATE_AFTER_HOURS` (a positive number of hours), else 4 hours."""
    raw = environ.get(ESCALATE_AFTER_ENV, "").strip()
    if not raw:
        return DEFAULT_ESCALATE_AFTER
    try:
        hours = float(raw)
    except ValueError:
        hours = float("nan")
    if not hours > 0 or hours == float("inf"):
        raise ValueError(f"{ESCALATE_AFTER_ENV} must be a positive number of hours, got {raw!r}")
    return timedelta(hours=hours)


def read_dead_letter_cursor(cursor: str | None) -> tuple[DeadLetterMemory, dict[str, Any] | None]:
    if not cursor:
        return DeadLetterMemory(), None
    data = _json_object(cursor, "alert_on_dead_letters")
    lists = {name: data.get(name, []) for name in ("alerted", "escalated")}
    for name, keys in lists.items():
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise ValueError(
                f"alert_on_dead_letters cursor: {name!r} must be a list of idempotency keys; "
                "reset the sensor's cursor in the UI (open dead letters are then announced again)"
            )
    memory = DeadLetterMemory(
        alerted=frozenset(lists["alerted"]), escalated=frozenset(lists["escalated"])
    )
    return memory, data.get("flood")


def write_dead_letter_cursor(memory: DeadLetterMemory, flood_state: Mapping[str, Any]) -> str:
    return json.dumps(
        {
            "alerted": sorted(memory.alerted),
            "escalated": sorted(memory.escalated),
            "flood": flood_state,
        },
        sort_keys=True,
    )


def _json_object(cursor: str, sensor: str) -> dict[str, Any]:
    try:
        data = json.loads(cursor)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ValueError(
            f"{sensor} cursor is not a JSON object ({cursor[:80]!r}); reset the sensor's cursor in the UI"
        )
    return data


# --- Slack-compatible payload --------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Slack asks for exactly these three to be escaped in mrkdwn text (its formatting guide)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Incoming-webhook JSON: `text` (the notification fallback) and Block Kit `blocks`."""
    emoji = SLACK_EMOJI[alert.severity]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _truncate(
                    f"{emoji} *{_mrkdwn(alert.title)}*\n{_mrkdwn(alert.text)}", SLACK_SECTION_CHARS
                ),
            },
        }
    ]
    if alert.fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _truncate(
                            f"*{_mrkdwn(name)}*\n{_mrkdwn(value)}", SLACK_FIELD_CHARS
                        ),
                    }
                    for name, value in list(alert.fields.items())[:SLACK_MAX_FIELDS]
                ],
            }
        )
    context = f"key `{_mrkdwn(alert.key)}` · owner {_mrkdwn(alert.owner or 'unassigned')} · {alert.severity}"
    if alert.suppressed:
        context += f" · {alert.suppressed} similar suppressed"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {
        "text": _truncate(f"[{alert.severity.upper()}] {alert.title}", SLACK_SECTION_CHARS),
        "blocks": blocks,
    }
