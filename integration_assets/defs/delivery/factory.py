"""One delivery asset per (target, entity): plan the writes into the outbox, then drain it.

Each materialization (1) reads the core tables it maps from, (2) maps every candidate record
(lookups counted, failures quarantined in ops.mapping_quarantine), (3) refuses any write carrying a
value not taken from its attribute's system of record or a fallback (contracts/ownership.yaml;
quarantined as `ownership: ...`, see delivery/ownership_guard.py), (4) enqueues what changed in
ops.outbox, and (5) sends what is due through the target's client. Running it twice, or again after
a failure, sends nothing twice: delivered rows are never due again, and every write is an upsert by
external id at the target.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from integration_assets.contracts.ownership import GOLDEN_RECORD, load_ownership
from integration_assets.defs.delivery.names import (
    CHECK_PLAN_BALANCE,
    CHECK_TARGET_REACHABLE,
    GROUP,
    OWNER,
    delivery_key,
)
from integration_assets.delivery.drain import DrainPolicy
from integration_assets.delivery.order_scope import record_plan
from integration_assets.delivery.ownership_guard import refuse_unowned_writes
from integration_assets.delivery.planning import PlanResult, PlanSources
from integration_assets.delivery.plans import golden_customers
from integration_assets.delivery.targets import target_for
from integration_assets.storage import outbox as store
from integration_assets.storage.balances import record_balance
from integration_assets.storage.mapping_quarantine import quarantine_count, replace_quarantine
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.outbox import outbox_books


class DeliveryConfig(dg.Config):
    """How hard to try: attempts before a dead letter, and failures in a row that stop a drain; and
    whether to map every order again."""

    max_attempts: int = 24
    breaker_threshold: int = 3
    # Order deliveries map only the orders whose inputs changed (delivery/order_scope.py); True maps
    # every order again (after a fix the scope cannot see, such as a changed lookup in a target).
    replan_all: bool = False


Planner = Callable[[PlanSources, Any], PlanResult]


@dataclass(frozen=True)
class DeliverySpec:
    target: str
    entity: str
    plural: str  # the asset key's last part, e.g. "sales_orders"
    plan: Planner
    deps: Sequence[dg.AssetKey]
    description: str

    @property
    def key(self) -> dg.AssetKey:
        return delivery_key(self.target, self.plural)


def build_delivery_asset(spec: DeliverySpec) -> dg.AssetsDefinition:
    target = target_for(spec.target, spec.entity)

    @dg.asset(
        key=spec.key,
        deps=list(spec.deps),
        group_name=GROUP,
        owners=[OWNER],
        kinds={"api", "duckdb"},
        tags={"layer": "delivery", "target": spec.target},
        pool=WAREHOUSE_POOL,
        required_resource_keys={target.resource_key, "warehouse", "raw_log"},
        description=spec.description,
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_TARGET_REACHABLE,
                asset=spec.key,
                description=f"The {spec.target.upper()} answered: the drain was not stopped by its circuit breaker.",
            ),
            dg.AssetCheckSpec(
                CHECK_PLAN_BALANCE,
                asset=spec.key,
                description="Every candidate record became an intent, a quarantined mapping, or needed no write.",
            ),
        ],
    )
    def _delivery(context: dg.AssetExecutionContext, config: DeliveryConfig):
        client = getattr(context.resources, target.resource_key)
        warehouse_resource: WarehouseResource = context.resources.warehouse
        wh = warehouse_resource.warehouse()
        run_id = context.run_id
        raw_log: RawLogResource = context.resources.raw_log
        plan = spec.plan(PlanSources(wh, raw_log.log(), replan_all=config.replan_all), client)
        scope = plan.scope
        # Ownership before anything is enqueued: a value goes to a target only from its owner's system.
        registry = load_ownership()
        # One opening of the warehouse for the reads and the enqueue (no network in between); the
        # drain below opens it per chunk, between sends.
        with wh.session():
            golden = (
                {str(row["customer_id"]): row for row in golden_customers(wh)}
                if registry.delivery(spec.target, spec.entity).values_from == GOLDEN_RECORD
                else {}
            )
            refused = refuse_unowned_writes(plan, registry, golden)
            for external_id, reason in sorted(refused.items()):
                context.log.error(f"write refused, not enqueued: {external_id}: {reason}")
            with wh.connect() as con:
                unbuilt = store.unbuilt_or_refused(con, exclude=(spec.target, spec.entity))
            # A child of a write that was not built, or is a dead letter, waits in mapping quarantine
            # (naming its parent) instead of burning its attempts on "reference not found".
            plan.hold_children_of_unbuilt(unbuilt)
            with wh.transaction() as con:
                enqueued = store.enqueue(con, spec.target, spec.entity, plan.intents, run_id)
                replace_quarantine(
                    con,
                    plan.target,
                    plan.entity,
                    plan.quarantined,
                    run_id,
                    order_ids=None if scope is None else scope.order_ids,
                )
                record_balance(con, run_id, spec.key.to_user_string(), "plan", plan.balance())
        for reason, count in sorted(Counter(q.reason for q in plan.quarantined).items()):
            context.log.warning(f"{count} {spec.entity} write(s) not built: {reason}")
        report = target.drain(
            wh, client, run_id, DrainPolicy(config.max_attempts, config.breaker_threshold)
        )
        for letter in report.dead_letters:
            context.log.warning(
                f"dead letter {letter['idempotency_key']}: {letter['error_class']}: {letter['message']}"
            )
        with wh.transaction() as con:
            statuses = store.counts_by_status(con, spec.target, spec.entity)
            books = outbox_books(statuses)
            record_balance(con, run_id, spec.key.to_user_string(), "outbox", books)
            quarantine_open = quarantine_count(con, spec.target, spec.entity)
            if scope is not None:
                record_plan(con, scope, run_id)
        if report.breaker_open:
            context.log.error(report.breaker_reason)
        yield dg.MaterializeResult(
            metadata={
                "candidates": plan.candidates,
                "intents": len(plan.intents),
                "enqueued": enqueued.enqueued,
                "unchanged": enqueued.unchanged,
                "superseded": len(enqueued.superseded_keys),
                "awaiting_approval_new": enqueued.awaiting_approval,
                "mapping_quarantined": len(plan.quarantined),
                "mapping_quarantine_open": quarantine_open,
                **({} if scope is None else scope.as_metadata()),
                "ownership_refused": len(refused),
                "failed_lookups": plan.failed_lookups(),
                "lookups": dg.MetadataValue.json(dict(plan.lookups)),
                "flags": dg.MetadataValue.json(dict(plan.flags)),
                **report.as_metadata(),
                "outbox_by_status": dg.MetadataValue.json(statuses),
                "outbox_balance": books.as_text(),
                **client.stats.as_metadata(),
            }
        )
        yield dg.AssetCheckResult(
            check_name=CHECK_TARGET_REACHABLE,
            passed=not report.breaker_open,
            severity=dg.AssetCheckSeverity.ERROR,
            description=report.breaker_reason
            or f"{report.attempted} write(s) attempted, the target answered",
            metadata={
                "deferred": report.deferred,
                "retry_later": report.as_metadata()["retry_later"],
            },
        )
        yield dg.AssetCheckResult(
            check_name=CHECK_PLAN_BALANCE,
            passed=bool(plan.balance().holds),
            description=plan.balance().as_text(),
        )

    return _delivery
