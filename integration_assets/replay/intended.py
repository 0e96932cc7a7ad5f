"""The delivery-intended state: what every planner wants each target to hold, computed, never sent.

The planners of `integration_assets/delivery/plans.py` run exactly as the delivery assets run them
(`defs/delivery/factory.py`), in the assets' dependency order, and a write whose parent could not be
built (or is an open dead letter in the outbox given) is held the same way. Nothing is enqueued and
nothing is drained: only the warehouse handed in (a scratch copy) is written, its
ops.mapping_quarantine, so that held children see their held parents as the factory's do.

Some planners look things up in their target (the CRM's users by email, its picklists): those are
read-only requests through `ReadOnlyLookups`, which answers each question once per replay (so the live
and the replayed side are planned against the same answers) and refuses anything but a lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from integration_assets.delivery.planning import PlanResult, PlanSources
from integration_assets.delivery.targets import target_for
from integration_assets.replay.digest import PartDigest, canonical_row, multiset_digest
from integration_assets.storage import outbox as store
from integration_assets.storage.mapping_quarantine import replace_quarantine
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.write_outcome import TargetError

# What a planner may ask its target: read-only lookups (integration_assets/delivery/plans.py).
LOOKUP_METHODS = frozenset({"users_by_email", "picklist_values", "record_type_ids"})
LOOKUP_ATTRIBUTES = frozenset({"default_owner_id"})


class LookupRefused(RuntimeError):
    """A planner asked its client for something other than a read-only lookup."""


class NoClient(RuntimeError):
    """A planner needed a lookup and no client for its target was configured."""


class ReadOnlyLookups:
    """A target client reduced to its read-only lookups, each answered once (errors included)."""

    def __init__(self, target: str, client: Any | None):
        self.target = target
        self._client = client
        self._answers: dict[tuple, Any] = {}
        self.requests = 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in LOOKUP_METHODS | LOOKUP_ATTRIBUTES:
            raise LookupRefused(f"replay asked the {self.target} client for {name}: not a lookup")
        if self._client is None:
            raise NoClient(f"no {self.target} client configured for its read-only lookups")
        if name in LOOKUP_ATTRIBUTES:
            return getattr(self._client, name)

        def lookup(*args: Any) -> Any:
            key = (name, *args)
            if key not in self._answers:
                self.requests += 1
                try:
                    self._answers[key] = getattr(self._client, name)(*args)
                except TargetError as error:
                    self._answers[key] = error
            answer = self._answers[key]
            if isinstance(answer, TargetError):
                raise answer
            return answer

        return lookup


def read_only_lookups(clients: Mapping[str, Any | None]) -> dict[str, ReadOnlyLookups]:
    """One ReadOnlyLookups per delivery target (`crm`, `erp`, `wms`), the client possibly absent."""
    return {
        target: ReadOnlyLookups(target, clients.get(target)) for target in ("crm", "erp", "wms")
    }


@dataclass
class IntendedState:
    """Per (target, entity): the plan, or why it could not be computed."""

    plans: dict[tuple[str, str], PlanResult] = field(default_factory=dict)
    not_computed: dict[tuple[str, str], str] = field(default_factory=dict)

    def digests(self) -> dict[str, PartDigest]:
        parts = {}
        for target, entity in sorted({*self.plans, *self.not_computed}):
            name = f"delivery {target}/{entity}"
            if (target, entity) in self.not_computed:
                reason = self.not_computed[(target, entity)]
                parts[name] = PartDigest(name, 0, "", f"not computed: {reason}")
                continue
            plan = self.plans[(target, entity)]
            lines = [
                b"intent " + canonical_row([i.external_id, i.content_hash, i.approval_rule])
                for i in plan.intents
            ]
            lines += [
                b"not_built " + canonical_row([q.external_id, q.reason]) for q in plan.quarantined
            ]
            note = f"{len(plan.quarantined)} not built" if plan.quarantined else ""
            parts[name] = PartDigest(name, len(plan.intents), multiset_digest(lines), note)
        return parts


def _delivery_specs():
    from integration_assets.defs.delivery.assets import SPECS

    return SPECS


def plan_everything(
    warehouse: Warehouse, raw_log: RawLog, lookups: Mapping[str, ReadOnlyLookups]
) -> IntendedState:
    """Run every planner against `warehouse` (a scratch copy: its mapping quarantine is rewritten)."""
    state = IntendedState()
    with warehouse.transaction() as con:
        con.execute("DELETE FROM ops.mapping_quarantine")
    for spec in _delivery_specs():
        pair = (spec.target, spec.entity)
        client = lookups[target_for(*pair).resource_key]
        try:
            plan = spec.plan(PlanSources(warehouse, raw_log, replan_all=True), client)
        except (NoClient, TargetError) as error:
            state.not_computed[pair] = str(error)
            continue
        with warehouse.transaction() as con:
            plan.hold_children_of_unbuilt(store.unbuilt_or_refused(con, exclude=pair))
            replace_quarantine(con, *pair, plan.quarantined, "replay")
        state.plans[pair] = plan
    return state
