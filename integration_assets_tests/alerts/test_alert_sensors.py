"""The alert sensors against a real Dagster instance, a temporary DuckDB and the local receiver."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from integration_assets.defs.alerts import defs
from integration_assets.defs.alerts.names import RUN_FAILURE_FLOOD_STATE_KEY
from integration_assets.defs.alerts.sensors import (
    alert_on_dead_letters,
    alert_on_failed_checks,
    alert_on_run_failure,
)
from integration_assets.sandbox.alert_receiver import start_alert_receiver
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.alert_sink import AlertSinkResource, read_alert_log


@pytest.fixture
def receiver(tmp_path):
    with start_alert_receiver(tmp_path / "received.jsonl", token="T1/B1/sensor-secret") as served:
        yield served


@pytest.fixture
def sink(tmp_path, receiver):
    return AlertSinkResource(webhook_url=receiver.hook_url, log_path=str(tmp_path / "alerts.log"))


def alert_lines(tmp_path) -> list[dict]:
    return [line for line in read_alert_log(tmp_path / "alerts.log") if line["event"] == "alert"]


def test_the_alert_sensors_load_with_their_resources():
    bound = dg.Definitions.merge(
        defs,
        dg.Definitions(
            resources={"alert_sink": AlertSinkResource(), "warehouse": WarehouseResource()}
        ),
    )
    dg.Definitions.validate_loadable(bound)
    sensors = {sensor.name: sensor for sensor in bound.sensors}
    assert set(sensors) == {
        "alert_on_run_failure",
        "alert_on_failed_checks",
        "alert_on_dead_letters",
        "alert_on_schema_drift",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["alert_on_failed_checks"].minimum_interval_seconds == 30
    assert sensors["alert_on_dead_letters"].minimum_interval_seconds == 60


# --- run failures --------------------------------------------------------------------------------


@dg.asset
def fragile_extract():
    raise ValueError("the storefront answered nonsense\nsecond line of detail")


def failed_run(instance, sink):
    result = dg.materialize([fragile_extract], instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alert_sink": sink},
    ).for_run_failure(), result.dagster_run


def test_a_failed_run_posts_its_job_step_and_error_once_per_window(tmp_path, receiver, sink):
    with dg.instance_for_test() as instance:
        context, run = failed_run(instance, sink)
        alert_on_run_failure(context)
        second_context, _ = failed_run(instance, sink)
        alert_on_run_failure(second_context)
        state = json.loads(
            instance.run_storage.get_cursor_values({RUN_FAILURE_FLOOD_STATE_KEY})[
                RUN_FAILURE_FLOOD_STATE_KEY
            ]
        )

    (line,) = alert_lines(tmp_path)
    assert line["key"] == "run_failure:__ephemeral_asset_job__"
    assert line["fields"]["run_id"] == run.run_id
    assert line["fields"]["step"] == "fragile_extract"
    assert line["fields"]["error"] == "ValueError: the storefront answered nonsense"
    assert "second line" not in line["text"]
    (payload,) = receiver.received()
    assert payload["text"] == "[ERROR] Run failed: __ephemeral_asset_job__"
    assert run.run_id in payload["blocks"][0]["text"]["text"]
    # The second failure of the same job inside the window is counted, not posted.
    assert state["keys"]["run_failure:__ephemeral_asset_job__"]["suppressed"] == 1


def test_unreadable_run_failure_flood_state_is_reset_not_a_reason_to_stay_silent(tmp_path, sink):
    with dg.instance_for_test() as instance:
        instance.run_storage.set_cursor_values({RUN_FAILURE_FLOOD_STATE_KEY: "{not json"})
        context, run = failed_run(instance, sink)
        alert_on_run_failure(context)
        saved = instance.run_storage.get_cursor_values({RUN_FAILURE_FLOOD_STATE_KEY})
    (line,) = alert_lines(tmp_path)
    assert line["fields"]["run_id"] == run.run_id
    assert json.loads(saved[RUN_FAILURE_FLOOD_STATE_KEY])["version"] == 1


# --- failed checks -------------------------------------------------------------------------------


@dg.asset(
    check_specs=[
        dg.AssetCheckSpec("totals_add_up", asset="orders_under_check", blocking=True),
        dg.AssetCheckSpec("volume_plausible", asset="orders_under_check"),
    ]
)
def orders_under_check(context: dg.AssetExecutionContext):
    failing = context.run.tags.get("failing", "")
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="totals_add_up",
                passed="totals" not in failing,
                description="3 orders do not add up",
            ),
            dg.AssetCheckResult(
                check_name="volume_plausible",
                passed="volume" not in failing,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"batch_rows": 9000, "trailing_median": 300},
            ),
        ]
    )


def check_run(instance, failing: str) -> None:
    dg.materialize(
        [orders_under_check], instance=instance, tags={"failing": failing}, raise_on_error=False
    )


def tick(instance, cursor, sink):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alert_sink": sink}
    )
    result = alert_on_failed_checks(context)
    return result, context.cursor


@pytest.mark.parametrize("storage", ["sqlite_run_sharded", "in_memory"])
def test_a_failed_check_posts_once_and_a_repeat_in_the_window_is_counted(
    tmp_path, receiver, sink, storage
):
    instance_context = (
        dg.instance_for_test()  # SQLite, run-sharded: what dagster.yaml configures
        if storage == "sqlite_run_sharded"
        else dg.DagsterInstance.ephemeral()
    )
    with instance_context as instance:
        check_run(instance, failing="totals")  # before the sensor is switched on: left to the UI
        started, cursor = tick(instance, None, sink)
        assert "started" in started.skip_message
        assert alert_lines(tmp_path) == []

        check_run(instance, failing="totals")
        dg.materialize([fragile_extract], instance=instance, raise_on_error=False)  # no checks
        result, cursor = tick(instance, cursor, sink)
        assert "2 check evaluations read, 1 failed; posted 1 alert" in result.skip_message
        (line,) = alert_lines(tmp_path)
        assert line["key"] == "check:orders_under_check:totals_add_up"
        assert line["severity"] == "error"
        assert "3 orders do not add up" in line["text"] and "It is blocking" in line["text"]

        check_run(instance, failing="totals,volume")
        result, cursor = tick(instance, cursor, sink)
        (warning,) = alert_lines(tmp_path)[1:]
        assert warning["key"] == "check:orders_under_check:volume_plausible"
        assert warning["severity"] == "warning"
        assert "batch_rows: 9000" in warning["text"]
        flood = json.loads(cursor)["flood"]["keys"]
        assert flood["check:orders_under_check:totals_add_up"]["suppressed"] == 1

        # Nothing new: a tick reads nothing again and posts nothing.
        result, cursor = tick(instance, cursor, sink)
        assert "0 check evaluations read" in result.skip_message
        assert len(alert_lines(tmp_path)) == 2
        assert len(receiver.received()) == 2


def test_the_next_alert_after_the_window_carries_the_count(tmp_path, receiver, sink):
    with dg.instance_for_test() as instance:
        _, cursor = tick(instance, None, sink)
        check_run(instance, failing="totals")
        _, cursor = tick(instance, cursor, sink)
        check_run(instance, failing="totals")
        _, cursor = tick(instance, cursor, sink)
        # Move the window 20 minutes back: it has ended (15) but not long enough ago (30) for
        # its count to have come back as a summary, so the next alert carries it.
        state = json.loads(cursor)
        entry = state["flood"]["keys"]["check:orders_under_check:totals_add_up"]
        entry["sent_at"] -= 20 * 60
        entry["first_suppressed_at"] -= 20 * 60
        entry["last_suppressed_at"] -= 20 * 60
        check_run(instance, failing="totals")
        tick(instance, json.dumps(state), sink)
    texts = [line["text"] for line in alert_lines(tmp_path)]
    assert len(texts) == 2, texts  # the count comes with the next alert, not as a separate summary
    assert "(+1 similar suppressed since" in texts[1]
    assert alert_lines(tmp_path)[1]["suppressed"] == 1


def test_a_dead_webhook_does_not_stop_the_tick_and_the_alert_stays_in_alerts_log(tmp_path):
    with start_alert_receiver(tmp_path / "received.jsonl") as gone:
        url = gone.hook_url
    dead_sink = AlertSinkResource(
        webhook_url=url, log_path=str(tmp_path / "alerts.log"), backoff_base_seconds=0.01
    )
    with dg.instance_for_test() as instance:
        _, cursor = tick(instance, None, dead_sink)
        check_run(instance, failing="totals")
        result, cursor = tick(instance, cursor, dead_sink)
    assert "posted 1 alert (1 not delivered to the webhook)" in result.skip_message
    assert json.loads(cursor)["flood"]["keys"]  # the tick completed and saved its cursor
    events = [(line["event"], line["key"]) for line in read_alert_log(tmp_path / "alerts.log")]
    assert events == [
        ("alert", "check:orders_under_check:totals_add_up"),
        ("delivery_failed", "check:orders_under_check:totals_add_up"),
    ]


# --- dead letters --------------------------------------------------------------------------------


def outbox_row(key, target, entity, external_id, dead_at, status="dead", resolved_at=None):
    return (
        key, target, entity, external_id, 1, "{}", "hash", "raw/ref", status, 5,
        "validation", 422, f"{external_id}: field customer is unknown", "run-1",
        dead_at - timedelta(hours=1), dead_at, resolved_at,
    )  # fmt: skip


INSERT = """
    INSERT INTO ops.outbox (idempotency_key, target, entity, external_id, sequence, payload,
        payload_hash, source_ref, status, attempts, error_class, target_status, target_message,
        enqueued_run_id, enqueued_at, dead_at, resolved_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def warehouse_path(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    now = datetime.now(UTC)
    rows = [
        outbox_row("erp:sales_order:1001:h", "erp", "sales_order", "SO-1001", now - timedelta(minutes=3)),
        outbox_row("erp:sales_order:1002:h", "erp", "sales_order", "SO-1002", now - timedelta(minutes=2)),
        outbox_row("crm:account:77:h", "crm", "account", "ACC-77", now - timedelta(hours=5)),
        outbox_row("erp:invoice:9:h", "erp", "invoice", "INV-9", now - timedelta(hours=9),
                   resolved_at=now - timedelta(hours=1)),
        outbox_row("erp:invoice:10:h", "erp", "invoice", "INV-10", now, status="sent"),
    ]  # fmt: skip
    with Warehouse(path).connect() as connection:
        connection.executemany(
            INSERT, [(*row[:14], naive_utc(row[14]), naive_utc(row[15]), row[16]) for row in rows]
        )
    return path


def dead_letter_tick(instance, cursor, sink, path):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"alert_sink": sink, "warehouse": WarehouseResource(path=str(path))},
    )
    return alert_on_dead_letters(context), context.cursor


def test_open_dead_letters_alert_per_target_and_old_ones_escalate_once_to_their_owner(
    tmp_path, receiver, sink, warehouse_path, monkeypatch
):
    monkeypatch.delenv("DEAD_LETTER_ESCALATE_AFTER_HOURS", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    result, cursor = dead_letter_tick(instance, None, sink, warehouse_path)
    assert "3 open dead letters (1 escalated); posted 2 alerts" in result.skip_message

    by_key = {line["key"]: line for line in alert_lines(tmp_path)}
    assert set(by_key) == {"dead_letter_escalation:crm/account", "dead_letters:erp/sales_order"}
    new = by_key["dead_letters:erp/sales_order"]
    assert new["title"] == "2 new dead letters: erp/sales_order"
    assert "`SO-1001`" in new["text"] and "`SO-1002`" in new["text"]
    assert "validation: SO-1001: field customer is unknown" in new["text"]
    escalation = by_key["dead_letter_escalation:crm/account"]
    assert escalation["severity"] == "critical"
    # The owner comes from contracts/ownership.yaml: crm/account delivers the customer entity.
    assert escalation["owner"] == "Sales Operations"
    assert escalation["fields"]["owner_slack"] == "#sales-ops"
    assert "`ACC-77` dead for 5h" in escalation["text"]
    assert len(receiver.received()) == 2

    again, cursor = dead_letter_tick(instance, cursor, sink, warehouse_path)
    assert "posted 0 alerts" in again.skip_message
    assert len(alert_lines(tmp_path)) == 2
    assert json.loads(cursor)["escalated"] == ["crm:account:77:h"]


def test_the_escalation_age_is_configurable_by_environment(
    tmp_path, sink, warehouse_path, monkeypatch
):
    monkeypatch.setenv("DEAD_LETTER_ESCALATE_AFTER_HOURS", "10")
    _, cursor = dead_letter_tick(dg.DagsterInstance.ephemeral(), None, sink, warehouse_path)
    assert json.loads(cursor)["escalated"] == []
    assert {line["key"] for line in alert_lines(tmp_path)} == {
        "dead_letters:erp/sales_order",
        "dead_letters:crm/account",
    }


def test_no_warehouse_yet_is_a_skip(tmp_path, sink):
    result, cursor = dead_letter_tick(
        dg.DagsterInstance.ephemeral(), None, sink, tmp_path / "missing.duckdb"
    )
    assert "no warehouse at" in result.skip_message
    assert cursor is None
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_warehouse_held_by_a_writer_is_a_skip_and_the_next_tick_reads_it(
    tmp_path, sink, warehouse_path
):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); "
            "sys.stdin.readline()",
            str(warehouse_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        result, cursor = dead_letter_tick(
            dg.DagsterInstance.ephemeral(), None, sink, warehouse_path
        )
    finally:
        holder.communicate("release\n", timeout=30)
    assert "is held by a writer" in result.skip_message
    assert cursor is None  # nothing learned: the next tick starts from the same place
    assert alert_lines(tmp_path) == []

    result, _ = dead_letter_tick(dg.DagsterInstance.ephemeral(), None, sink, warehouse_path)
    assert "3 open dead letters" in result.skip_message
