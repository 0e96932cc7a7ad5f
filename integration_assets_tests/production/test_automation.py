"""Declarative automation, evaluated in process (no daemon) with the real definitions' conditions.

Runs are recorded on an ephemeral instance by stand-ins: assets with the real keys, dependencies and
check specs whose bodies only report success or a failed check. The evaluation itself always uses
the real definitions (`integration_assets.definitions.defs`), their real automation conditions and
the real sensor's target, so a change to any of them is what these tests judge.
"""

from collections.abc import Iterable

import dagster as dg
import pytest

from integration_assets.definitions import defs
from integration_assets.defs.automation.sensors import FOLLOWING_ASSETS, SENSOR_NAME
from integration_assets.defs.orders.names import (
    CHECK_TOTALS,
    GATING_CHECKS,
    ORDER_EVENTS,
    ORDERS_CURRENT,
    STAGING_ORDERS,
)
from integration_assets.defs.orders.schedules import hourly_sync_job
from integration_assets.defs.warehouse.sensors import warehouse_file_sync

GRAPH = defs.resolve_asset_graph()
DEFAULT_SENSOR = "default_automation_condition_sensor"


def _name(key: dg.AssetKey | dg.AssetCheckKey) -> str:
    if isinstance(key, dg.AssetCheckKey):
        return f"{key.asset_key.to_user_string()}:{key.name}"
    return key.to_user_string()


def _checks_of(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        GRAPH.get_check_spec(check) for check in GRAPH.asset_check_keys if check.asset_key == key
    ]


def stand_in(key: dg.AssetKey, failing_checks: Iterable[str] = ()) -> dg.AssetsDefinition:
    """An asset with `key`'s real dependencies and checks that materializes and reports every check
    passed, except `failing_checks`."""
    node = GRAPH.get(key)
    specs = _checks_of(key)
    failing = set(failing_checks)

    @dg.asset(
        key=key,
        deps=sorted(node.parent_keys, key=_name),
        group_name=node.group_name,
        check_specs=[dg.AssetCheckSpec(s.name, asset=key, blocking=s.blocking) for s in specs],
    )
    def _stand_in() -> dg.MaterializeResult:
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(check_name=s.name, passed=s.name not in failing) for s in specs
            ]
        )

    return _stand_in


STAND_INS = {key: stand_in(key) for key in GRAPH.materializable_asset_keys}
# The real jobs' selections over the stand-ins: a scheduled run of a whole asset job records no
# asset subset, exactly like these in-process runs of the stand-in jobs.
STAND_IN_JOBS = dg.Definitions(
    assets=list(STAND_INS.values()),
    jobs=[
        dg.define_asset_job(hourly_sync_job.name, selection=hourly_sync_job.selection),
        dg.define_asset_job(warehouse_file_sync.name, selection=warehouse_file_sync.selection),
    ],
)


class Ticks:
    """Successive evaluations of the real conditions over the sensor's target on one instance."""

    def __init__(self, evaluated: dg.Definitions = defs) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        self.defs = evaluated
        self.cursor = None

    def tick(self) -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=FOLLOWING_ASSETS,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {_name(r.key) for r in result.results if not r.true_subset.is_empty}

    def run_job(self, name: str) -> None:
        job = STAND_IN_JOBS.resolve_job_def(name)
        assert job.execute_in_process(instance=self.instance).success

    def materialize(self, keys: Iterable[dg.AssetKey], failing_checks: Iterable[str] = ()) -> bool:
        keys = list(keys)
        assets = [
            stand_in(key, failing_checks) if failing_checks else STAND_INS[key] for key in keys
        ]
        return dg.materialize(assets, instance=self.instance, raise_on_error=False).success

    def everything_built_by_the_jobs(self) -> None:
        """The state after the warehouse file sync and one hourly run: every asset exists."""
        assert self.tick() == set()
        self.run_job(warehouse_file_sync.name)
        self.run_job(hourly_sync_job.name)
        assert self.tick() == set()


def automated_keys() -> set[str]:
    return {_name(key) for key in GRAPH.get_all_asset_keys() if GRAPH.get(key).automation_condition}


def followers_of(key: dg.AssetKey) -> set[str]:
    """What the automation should request after `key` changed: its automated descendants and their checks."""
    downstream = dg.AssetSelection.keys(key).downstream(include_self=False) & FOLLOWING_ASSETS
    return {
        _name(entity)
        for entity in downstream.resolve(GRAPH) | downstream.resolve_checks(GRAPH)
        if GRAPH.get(entity).automation_condition is not None
    }


# --- which assets follow, and the sensor that evaluates them --------------------------------------


def test_the_core_tables_and_marts_follow_and_nothing_that_extracts_stages_or_writes_out_does():
    automated = automated_keys()
    assert {"core/order_events", "core/orders_current", "core/inventory_ledger"} <= automated
    assert {"core/returns", "core/financial_ledger", "reporting/orders_per_day"} <= automated
    for key in GRAPH.get_all_asset_keys():
        layer = key.path[0]
        if layer in ("raw", "staging", "delivery", "ops"):
            assert GRAPH.get(key).automation_condition is None, key
    for key in automated:
        assert key.split("/")[0] in ("core", "reporting"), key


def test_one_sensor_evaluates_every_automated_asset_and_check_and_runs_by_default():
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    target = sensor.asset_selection
    covered = {_name(k) for k in target.resolve(GRAPH) | target.resolve_checks(GRAPH)}
    with_condition = {
        _name(k)
        for k in GRAPH.get_all_asset_keys() | GRAPH.asset_check_keys
        if GRAPH.get(k).automation_condition is not None
    }
    assert with_condition <= covered
    # Nothing left over for Dagster's implicit default sensor (which would start stopped).
    repository = defs.get_repository_def()
    assert DEFAULT_SENSOR not in {s.name for s in repository.sensor_defs}


def test_every_check_on_a_following_asset_runs_with_it():
    for key in GRAPH.get_all_asset_keys():
        if GRAPH.get(key).automation_condition is None:
            continue
        for check in GRAPH.asset_check_keys:
            if check.asset_key == key:
                assert GRAPH.get(check).automation_condition is not None, check


# --- behaviour, tick by tick ----------------------------------------------------------------------


def test_nothing_is_requested_again_after_the_hourly_job_built_everything_in_one_run():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()  # asserts an empty tick after the hourly run
    assert ticks.tick() == set()


def test_staging_orders_with_its_gate_passed_is_followed_by_the_core_tables_and_marts():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    assert ticks.materialize([STAGING_ORDERS])
    requested = ticks.tick()
    assert requested == followers_of(STAGING_ORDERS)
    assert {"core/order_events", "core/orders_current", "reporting/orders_per_day"} <= requested
    assert "core/order_events:versions_accounted_for" in requested  # the gate of what follows it
    assert not {key for key in requested if key.startswith(("delivery/", "raw/", "staging/"))}
    assert "core/products" not in requested  # not downstream of orders

    # The run the sensor would launch; afterwards everything is up to date.
    assert ticks.materialize(dg.AssetKey.from_user_string(k) for k in requested if ":" not in k)
    assert ticks.tick() == set()


def test_a_staged_batch_whose_blocking_check_failed_is_not_followed_until_a_later_one_passes():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    assert CHECK_TOTALS in GATING_CHECKS
    assert not ticks.materialize([STAGING_ORDERS], failing_checks=[CHECK_TOTALS])
    assert ticks.tick() == set()
    assert ticks.tick() == set()  # not later either: the failed check still stands
    assert ticks.materialize([STAGING_ORDERS])
    assert "core/order_events" in ticks.tick()


@pytest.mark.filterwarnings("ignore::dagster.PreviewWarning")  # map_asset_specs
def test_eager_alone_would_have_followed_the_failed_batch():
    """The control for the test above: without all_deps_blocking_checks_passed() the same history
    requests the core tables, so the real condition is what keeps a failed gate closed."""
    eager_only = defs.map_asset_specs(
        func=lambda spec: (
            spec.replace_attributes(automation_condition=dg.AutomationCondition.eager())
            if spec.automation_condition is not None
            else spec
        )
    )
    ticks = Ticks(evaluated=eager_only)
    ticks.everything_built_by_the_jobs()
    assert not ticks.materialize([STAGING_ORDERS], failing_checks=[CHECK_TOTALS])
    assert "core/order_events" in ticks.tick()


def test_a_failed_blocking_check_on_a_core_table_stops_what_follows_it():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    failing = [spec.name for spec in _checks_of(ORDER_EVENTS) if spec.blocking]
    assert failing, "core/order_events has a blocking check"
    assert not ticks.materialize([ORDER_EVENTS], failing_checks=failing)
    # Neither orders_current nor the other tables and marts built on the events follow.
    assert ticks.tick() == set()
    assert ticks.materialize([ORDER_EVENTS])
    assert {ORDERS_CURRENT.to_user_string(), "reporting/order_lifecycle"} <= ticks.tick()


def test_a_second_hourly_run_is_not_followed_by_a_duplicate():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    ticks.run_job(hourly_sync_job.name)
    assert ticks.tick() == set()


def test_new_wms_files_staged_by_their_own_job_are_followed_by_the_inventory_ledger_and_returns():
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    ticks.run_job(warehouse_file_sync.name)
    requested = ticks.tick()
    staged = [
        key for key in GRAPH.materializable_asset_keys if key.path[:2] == ["staging", "warehouse"]
    ]
    assert requested == set().union(*(followers_of(key) for key in staged))
    assert {"core/inventory_ledger", "core/returns", "reporting/open_exceptions"} <= requested
    assert "core/order_events" not in requested


def test_after_an_hourly_run_failed_in_a_core_step_that_step_and_its_marts_follow_but_no_delivery():
    """A whole-job run records no asset subset, so the automation does not know the failed step was
    the run's to build: it requests it (and what follows it) once the run is over, alongside the run
    retry. Both are idempotent and serialized by the warehouse pool; delivery stays with the retry."""
    failing_key = ORDERS_CURRENT
    node = GRAPH.get(failing_key)

    @dg.asset(key=failing_key, deps=sorted(node.parent_keys, key=_name), group_name=node.group_name)
    def broken_orders_current() -> None:
        raise RuntimeError("the step fails")

    assets = [a for key, a in STAND_INS.items() if key != failing_key] + [broken_orders_current]
    hourly = dg.Definitions(
        assets=assets,
        jobs=[dg.define_asset_job(hourly_sync_job.name, selection=hourly_sync_job.selection)],
    ).resolve_job_def(hourly_sync_job.name)
    ticks = Ticks()
    ticks.everything_built_by_the_jobs()
    assert not hourly.execute_in_process(instance=ticks.instance, raise_on_error=False).success
    requested = ticks.tick()
    its_checks = {_name(k) for k in GRAPH.asset_check_keys if k.asset_key == failing_key}
    assert requested == followers_of(failing_key) | its_checks | {failing_key.to_user_string()}
    assert not {key for key in requested if key.startswith("delivery/")}
    assert ticks.tick() == set()  # requested once, not again while it waits
