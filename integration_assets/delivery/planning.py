"""A planning pass for one (target, entity): the writes the pipeline wants, and the ones it could not build.

Mapping functions (integration_assets/streams/target_mappings.py) say for each candidate record
either a payload, or why it is quarantined (a failed lookup), plus every lookup they made. This
module turns a list of those results into outbox intents and the counts an operator sees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from integration_assets.delivery.order_scope import OrderScope
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.balances import Balance
from integration_assets.streams.mapped import Mapped
from integration_assets.streams.outbox import WriteIntent


@dataclass(frozen=True)
class PlanSources:
    """Where planners read: the warehouse (core tables, the outbox) and the raw log (source payloads).

    `replan_all`: map every order, not only those whose inputs changed (delivery/order_scope.py).
    """

    warehouse: Warehouse
    raw_log: RawLog
    replan_all: bool = False


@dataclass(frozen=True)
class Quarantined:
    external_id: str
    reason: str
    source_ref: str


@dataclass
class PlanResult:
    target: str
    entity: str
    intents: list[WriteIntent] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    lookups: Counter = field(default_factory=Counter)  # "crm_owner_by_email:missing" -> count
    flags: Counter = field(default_factory=Counter)  # "owner_defaulted" -> count
    candidates: int = 0
    nothing_to_write: int = 0  # e.g. an unpaid order has no reservation
    # external id -> the (target, entity, external id) writes it references
    depends_on: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)
    # An order planner's: which orders it mapped (None: a planner of every record, every time).
    scope: OrderScope | None = None

    def hold_children_of_unbuilt(self, unbuilt: Mapping[tuple[str, str, str], str]) -> int:
        """Quarantine the intents that reference a write that was not built or is a dead letter.

        A sales order whose customer could not be mapped (or was refused) would only ever be refused
        as a missing reference until its retries ran out; it is held here instead, naming the parent
        and why, and it is built again on every run, so it goes out as soon as the parent does.
        """
        held = 0
        kept = []
        for intent in self.intents:
            parents = [p for p in self.depends_on.get(intent.external_id, ()) if p in unbuilt]
            if not parents:
                kept.append(intent)
                continue
            parent = parents[0]
            reason = f"parent_not_built: {'/'.join(parent)} ({unbuilt[parent]})"
            self.quarantined.append(Quarantined(intent.external_id, reason, intent.source_ref))
            self.lookups[f"parent_write:{parent[1]}:held"] += 1
            held += 1
        self.intents = kept
        return held

    def quarantine_intents(self, reasons: Mapping[str, str], flag: str) -> int:
        """Move the intents named in `reasons` (external id -> why) to the quarantine, counted as `flag`."""
        kept = []
        for intent in self.intents:
            reason = reasons.get(intent.external_id)
            if reason is None:
                kept.append(intent)
                continue
            self.quarantined.append(Quarantined(intent.external_id, reason, intent.source_ref))
            self.flags[flag] += 1
        moved = len(self.intents) - len(kept)
        self.intents = kept
        return moved

    def balance(self) -> Balance:
        """Every candidate record becomes an intent, a quarantined mapping, or needs no write."""
        return Balance(
            "candidates_equal_intents_quarantined_nothing_to_write",
            {"candidates": self.candidates},
            {
                "intents": len(self.intents),
                "quarantined": len(self.quarantined),
                "nothing_to_write": self.nothing_to_write,
            },
        )

    def failed_lookups(self) -> int:
        return sum(
            count for key, count in self.lookups.items() if not key.endswith((":found", ":mapped"))
        )


def plan_from_mapped(
    target: str,
    entity: str,
    results: Iterable[tuple[Mapped | None, str]],
    scope: OrderScope | None = None,
) -> PlanResult:
    """Collect (mapping result, source reference) pairs into a plan; None means no write is needed.
    `scope`: the orders an order planner mapped (filled while `results` is consumed)."""
    plan = PlanResult(target, entity, scope=scope)
    for mapped, source_ref in results:
        plan.candidates += 1
        if mapped is None:  # the mapping says this record needs no write (e.g. an unpaid order)
            plan.nothing_to_write += 1
            continue
        for name, outcome in mapped.lookups:
            plan.lookups[f"{name}:{outcome}"] += 1
        for flag in mapped.flags:
            plan.flags[flag.split("=")[0]] += 1
        if mapped.quarantine:
            plan.quarantined.append(
                Quarantined(str(mapped.external_id), mapped.quarantine, source_ref)
            )
            continue
        if mapped.payload is None:
            plan.nothing_to_write += 1
            continue
        plan.depends_on[str(mapped.external_id)] = tuple(mapped.depends_on)
        plan.intents.append(
            WriteIntent(
                target,
                entity,
                str(mapped.external_id),
                mapped.payload,
                source_ref,
                mapped.approval_rule,
            )
        )
    return plan
