"""The alert sensors: run failures, failed asset checks, dead letters and schema drift, posted to the alert sink.

Each sensor only gathers facts (Dagster events, outbox rows) and posts what the pure functions in
`integration_assets/streams/alert_messages.py` decide, through the flood gate of
`integration_assets/streams/alert_flood.py`. None of them launches a run: a tick ends with a
SkipReason that says what it posted, so the tick history in the UI is the sensor's own log.
"""

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from integration_assets.defs.alerts.names import (
    CHECK_EVENTS_PER_RUN,
    DEAD_LETTERS_SENSOR,
    FAILED_CHECKS_SENSOR,
    RUN_FAILURE_FLOOD_STATE_KEY,
    RUN_FAILURE_SENSOR,
    SCHEMA_DRIFT_SENSOR,
    WAREHOUSE_LOCK_WAIT_SECONDS,
)
from integration_assets.storage.drift_events import DriftNotice, claim_drift_notices
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import Warehouse, WarehouseLockTimeout
from integration_assets.streams.alert_flood import (
    SEVERITY_ERROR,
    SEVERITY_WARNING,
    Alert,
    FloodGate,
)
from integration_assets.streams.alert_messages import (
    RUN_OVERLAP,
    CheckCursor,
    CheckEvaluation,
    DeadLetter,
    OwnershipRegistry,
    StepFailure,
    escalate_after_from_env,
    failed_check_alerts,
    first_line,
    keep_following,
    plan_dead_letter_alerts,
    read_check_cursor,
    read_dead_letter_cursor,
    run_failure_alert,
    write_check_cursor,
    write_dead_letter_cursor,
)
from integration_assets.systems.alert_sink import AlertSinkResource

RUNNING_STATUSES = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
OPEN_DEAD_LETTERS_SQL = """
    SELECT idempotency_key, target, entity, external_id, error_class, target_message,
           COALESCE(dead_at, last_attempt_at, enqueued_at) AS dead_at
    FROM ops.outbox
    WHERE status = 'dead' AND resolved_at IS NULL
    ORDER BY dead_at, idempotency_key
"""


def _window(alert_sink: AlertSinkResource) -> timedelta:
    return timedelta(minutes=alert_sink.flood_window_minutes)


def _post_all(
    context: dg.SensorEvaluationContext | dg.RunStatusSensorContext,
    alert_sink: AlertSinkResource,
    alerts: Sequence[Alert],
) -> str:
    """Post each alert; a webhook that fails is a warning (the alert is in alerts.log regardless)."""
    failed = 0
    for alert in alerts:
        delivery = alert_sink.post(alert)
        if delivery.delivered is False:
            failed += 1
            context.log.warning(
                f"alert {alert.key!r} is in {alert_sink.log_file()} but the webhook at "
                f"{delivery.webhook_host} did not take it ({delivery.error_class}"
                f"{f' {delivery.http_status}' if delivery.http_status else ''}, "
                f"{delivery.attempts} attempts)"
            )
    summary = f"posted {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    return summary + (f" ({failed} not delivered to the webhook)" if failed else "")


# --- run failures --------------------------------------------------------------------------------


def _user_error(error: Any) -> str:
    """The user's exception rather than Dagster's "Error occurred while executing op" wrapper."""
    while (
        error is not None
        and error.cause is not None
        and error.cls_name.startswith("Dagster")
        and error.cls_name.endswith("ExecutionError")
    ):
        error = error.cause
    return error.message if error is not None else ""


@dg.run_failure_sensor(
    name=RUN_FAILURE_SENSOR,
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Posts an alert for every failed run of this code location: job, run id, failing step and "
        "the first line of its error. At most one alert per job per flood window (the alert_sink "
        "resource's flood_window_minutes); the next one counts those held back."
    ),
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, alert_sink: AlertSinkResource):
    run = context.dagster_run
    failures = [
        StepFailure(event.step_key or "(unknown step)", _user_error(event.step_failure_data.error))
        for event in context.get_step_failure_events()
    ]
    alert = run_failure_alert(run.job_name, run.run_id, failures, context.failure_event.message)

    storage = context.instance.run_storage
    saved = storage.get_cursor_values({RUN_FAILURE_FLOOD_STATE_KEY}).get(
        RUN_FAILURE_FLOOD_STATE_KEY
    )
    try:
        gate = FloodGate(json.loads(saved) if saved else None, _window(alert_sink))
    except ValueError as error:
        # Unlike a sensor cursor, this state has no reset button in the UI: start afresh rather
        # than stop alerting on failed runs.
        context.log.warning(f"flood-gate state for run failures was unreadable, reset: {error}")
        gate = FloodGate(None, _window(alert_sink))
    now = datetime.now(UTC)
    outgoing = gate.expire(now)
    admitted = gate.admit(alert, now)
    outgoing += [admitted] if admitted else []
    summary = _post_all(context, alert_sink, outgoing)
    storage.set_cursor_values({RUN_FAILURE_FLOOD_STATE_KEY: json.dumps(gate.state)})
    context.log.info(
        f"run {run.run_id} of {run.job_name} failed: {summary}"
        + ("" if admitted else " (suppressed by flood control)")
    )


# --- failed asset checks -------------------------------------------------------------------------


def _metadata_text(metadata: Any) -> dict[str, str]:
    """Plain values only (counts, short texts): tables and previews belong in the UI, not an alert."""
    texts = {}
    for name, entry in metadata.items():
        value = getattr(entry, "value", entry)
        if isinstance(value, str | int | float | bool):
            texts[str(name)] = first_line(str(value), 120)
    return texts


def _evaluation(record: Any) -> CheckEvaluation:
    entry = record.event_log_entry
    data = entry.dagster_event.event_specific_data
    return CheckEvaluation(
        run_id=entry.run_id,
        storage_id=record.storage_id,
        evaluated_at=entry.timestamp,
        asset_key=data.asset_key.to_user_string(),
        check_name=data.check_name,
        passed=bool(data.passed),
        severity=data.severity.value,
        description=data.description,
        blocking=data.blocking,
        partition=data.partition,
        metadata=_metadata_text(data.metadata),
    )


def _read_check_evaluations(
    instance: dg.DagsterInstance, cursor: CheckCursor, now: datetime
) -> tuple[list[CheckEvaluation], dict[str, str]]:
    """Evaluations logged since the cursor, and the runs to follow next tick (run id -> event cursor).

    Read run by run: Dagster's default SQLite storage numbers events per run, so there is no
    instance-wide storage id to resume from (its `get_event_records` refuses a plain id cursor).
    """
    previous_tick = (
        now if cursor.watermark is None else datetime.fromtimestamp(cursor.watermark, UTC)
    )
    recent = dg.RunsFilter(updated_after=previous_tick - RUN_OVERLAP)
    # A long run updates its record only when its status changes: ask for running ones too.
    running = dg.RunsFilter(statuses=RUNNING_STATUSES)
    runs = {
        record.dagster_run.run_id: record
        for filters in (recent, running)
        for record in instance.get_run_records(filters=filters)
    }
    quiet = sorted(set(cursor.runs) - set(runs))  # followed, but not updated lately
    if quiet:
        runs.update(
            (record.dagster_run.run_id, record)
            for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=quiet))
        )  # a followed run deleted from the instance drops out here
    evaluations: list[CheckEvaluation] = []
    following: dict[str, str] = {}
    for run_id, run_record in sorted(runs.items()):
        connection = instance.get_records_for_run(
            run_id,
            cursor=cursor.runs.get(run_id),
            of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            limit=CHECK_EVENTS_PER_RUN,
        )
        evaluations += [_evaluation(record) for record in connection.records]
        if connection.has_more or keep_following(
            run_record.dagster_run.is_finished,
            run_record.update_timestamp.timestamp(),
            now.timestamp(),
        ):
            following[run_id] = connection.cursor
    return evaluations, following


@dg.sensor(
    name=FAILED_CHECKS_SENSOR,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 30 s, reads the asset-check evaluations logged by runs since the last tick and posts "
        "an alert per failed check (ERROR or WARN as the check says). At most one alert per check "
        "per flood window; the next one counts those held back. Starts from the moment it is "
        "switched on: earlier results are in the UI."
    ),
)
def alert_on_failed_checks(context: dg.SensorEvaluationContext, alert_sink: AlertSinkResource):
    cursor = read_check_cursor(context.cursor)
    now = datetime.now(UTC)
    evaluations, following = _read_check_evaluations(context.instance, cursor, now)

    gate = FloodGate(cursor.flood, _window(alert_sink))
    if cursor.watermark is None:
        # First tick: note where every recent run stands; what failed before is already in the UI.
        context.update_cursor(
            write_check_cursor(CheckCursor(now.timestamp(), following, gate.state))
        )
        return dg.SkipReason(
            f"started: alerting on check evaluations from now on ({len(evaluations)} earlier ones "
            f"in {len(following)} recent runs left to the UI)"
        )
    outgoing = gate.expire(now)
    failed = failed_check_alerts(evaluations)
    outgoing += [alert for alert in (gate.admit(a, now) for a in failed) if alert is not None]
    summary = _post_all(context, alert_sink, outgoing)
    context.update_cursor(write_check_cursor(CheckCursor(now.timestamp(), following, gate.state)))
    return dg.SkipReason(
        f"{len(evaluations)} check evaluations read, {len(failed)} failed; {summary}; "
        f"following {len(following)} runs"
    )


# --- dead letters --------------------------------------------------------------------------------


def _ownership() -> tuple[OwnershipRegistry | None, str | None]:
    """The ownership registry, or why there is none: escalations go out either way."""
    try:
        from integration_assets.contracts.ownership import load_ownership
    except ImportError as error:
        return None, f"the ownership registry could not be imported ({error})"
    try:
        return load_ownership(), None
    except Exception as error:  # noqa: BLE001 - a broken registry must not stop the escalation
        return (
            None,
            f"the ownership registry did not load: {type(error).__name__}: {first_line(str(error))}",
        )


def _as_utc(moment: datetime) -> datetime:
    # The warehouse stores TIMESTAMP (no zone) in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_open_dead_letters(store: Warehouse) -> list[DeadLetter]:
    """Open dead letters (status dead, not resolved), with the connection held only for the query."""
    with store.connect(read_only=True) as connection:
        rows = connection.execute(OPEN_DEAD_LETTERS_SQL).fetchall()
    return [
        DeadLetter(
            idempotency_key=key,
            target=target,
            entity=entity,
            external_id=str(external_id),
            error_class=error_class,
            target_message=message,
            dead_at=_as_utc(dead_at),
        )
        for key, target, entity, external_id, error_class, message, dead_at in rows
    ]


@dg.sensor(
    name=DEAD_LETTERS_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute, reads the open dead letters in ops.outbox. New ones: one alert per target and "
        "entity, naming the first few. Open longer than DEAD_LETTER_ESCALATE_AFTER_HOURS (default 4): "
        "an escalation to the owner the ownership registry names, once per dead letter. If the "
        "warehouse is busy with a writer, the tick skips and the next one tries again."
    ),
)
def alert_on_dead_letters(
    context: dg.SensorEvaluationContext,
    alert_sink: AlertSinkResource,
    warehouse: WarehouseResource,
):
    escalate_after = escalate_after_from_env(os.environ)
    memory, flood = read_dead_letter_cursor(context.cursor)
    store = Warehouse(warehouse.warehouse().path, lock_wait_seconds=WAREHOUSE_LOCK_WAIT_SECONDS)
    if not store.path.exists():
        return dg.SkipReason(f"no warehouse at {store.path} yet: nothing can have dead-lettered")
    try:
        letters = read_open_dead_letters(store)
    except (WarehouseLockTimeout, duckdb.IOException) as error:
        return dg.SkipReason(
            f"the warehouse {store.path} is held by a writer ({type(error).__name__}); "
            "trying again next tick"
        )
    except duckdb.CatalogException:
        return dg.SkipReason(f"the warehouse {store.path} has no ops.outbox table yet")

    now = datetime.now(UTC)
    gate = FloodGate(flood, _window(alert_sink))
    registry, problem = _ownership() if letters else (None, None)
    alerts, memory = plan_dead_letter_alerts(
        letters, memory, gate, now, escalate_after, registry, problem
    )
    outgoing = gate.expire(now) + alerts
    summary = _post_all(context, alert_sink, outgoing)
    context.update_cursor(write_dead_letter_cursor(memory, gate.state))
    return dg.SkipReason(
        f"{len(letters)} open dead letters ({len(memory.escalated)} escalated); {summary}"
    )


# --- schema drift --------------------------------------------------------------------------------


def schema_drift_alert(notice: DriftNotice) -> Alert:
    """One notice to the contract's owner: what changed, in how many batches, and what to do."""
    if notice.breaking:
        title = f"Schema drift blocks {notice.stream}: {notice.kind} field '{notice.field}'"
        action = (
            "The batches are held back from core. Review the change and publish a new version of "
            f"contracts/{notice.contract}.yaml that accepts it (or have the source fix it): the "
            "next run stages the blocked batches again under the new version."
        )
    else:
        title = f"New field '{notice.field}' in {notice.stream} (not in the contract)"
        action = (
            "The batches proceed. Review the field: list it as known (known_fields; known_columns "
            "for a warehouse file kind), or type it, in a new version of "
            f"contracts/{notice.contract}.yaml."
        )
    return Alert(
        key=notice.key,
        title=title,
        text=f"{notice.detail}. {action}",
        severity=SEVERITY_ERROR if notice.breaking else SEVERITY_WARNING,
        owner=notice.owner,
        fields={
            "contract": f"{notice.contract} v{notice.contract_version}",
            "kind": notice.kind,
            "field": notice.field,
            "batches": str(notice.batches),
        },
    )


@dg.sensor(
    name=SCHEMA_DRIFT_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every minute, reads the schema drift staging recorded in ops.schema_drift and posts each "
        "new change once (per stream, contract version, kind and field) to the contract's owner: "
        "a new field as a warning (the batch proceeded), a removed, renamed or retyped required "
        "field as an error (the batch is blocked until a new contract version). If the warehouse "
        "is busy with a writer, the tick skips and the next one tries again."
    ),
)
def alert_on_schema_drift(
    context: dg.SensorEvaluationContext,
    alert_sink: AlertSinkResource,
    warehouse: WarehouseResource,
):
    store = Warehouse(warehouse.warehouse().path, lock_wait_seconds=WAREHOUSE_LOCK_WAIT_SECONDS)
    if not store.path.exists():
        return dg.SkipReason(f"no warehouse at {store.path} yet: no batch staged, no drift")
    try:
        # Claimed (marked notified) in one transaction, posted after it commits: a tick that fails
        # before posting leaves the events for the next one; the alert log keeps what was posted.
        with store.transaction() as connection:
            notices = claim_drift_notices(connection)
    except (WarehouseLockTimeout, duckdb.IOException) as error:
        return dg.SkipReason(
            f"the warehouse {store.path} is held by a writer ({type(error).__name__}); "
            "trying again next tick"
        )
    summary = _post_all(context, alert_sink, [schema_drift_alert(n) for n in notices])
    return dg.SkipReason(f"{len(notices)} new schema drift notice(s); {summary}")
