"""Ownership enforced on writes: a value goes into a working system only from its owner's system.

The rule, for a write to target T (its system S, e.g. wms -> warehouse) carrying payload field F:

1. F must be declared for (T, entity) in ownership.yaml `deliveries`, naming the registry attribute(s)
   it carries. An undeclared field refuses the whole write: a write never carries an attribute nobody
   owns.
2. For each attribute A that F carries, the system the value was taken from (its origin) must be in
   A's precedence: its system of record, or one of its fallbacks. The origin is
   - for `values_from: golden_record` (customers): the system core.customers.attribute_sources
     records for A on the golden row of the write's external id (the key attribute: its system of
     record, the golden record is keyed by it); and, when F is A's value as is (not `derived`), F must
     equal the golden record's value, so a mapping that reads A anywhere else is caught even if the
     row's lineage is right. A present value for an attribute the golden record has no source for is
     refused unless F is `derived`.
   - otherwise: the field's `from`, else the delivery's `values_from` (the system the planner reads).
   A write that fails is not enqueued: it goes to ops.mapping_quarantine with reason `ownership: ...`
   naming the attribute, its system of record, its owner and what to do.

Operator overrides (`dlq retry --set F=V`) are a person writing V into T by hand: allowed when T is
the system of record of every attribute F carries (the ERP's payment terms); otherwise only with the
agreement of each such attribute's registered owner (`--owner-approved-by` naming the owner's email
or key), which is recorded with the retry. Without it the retry is refused and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from integration_assets.contracts.ownership import (
    GOLDEN_RECORD,
    Attribute,
    Delivery,
    DeliveryField,
    OwnershipRegistry,
)
from integration_assets.streams.outbox import WriteIntent

if TYPE_CHECKING:
    from integration_assets.delivery.planning import PlanResult

REASON_PREFIX = "ownership: "
GOLDEN_ENTITY = "customer"


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _precedence_text(attribute: Attribute) -> str:
    if not attribute.fallback:
        return attribute.system
    return f"{attribute.system} (then {', '.join(attribute.fallback)})"


def _owner_text(attribute: Attribute) -> str:
    return f"{attribute.owner.name} ({attribute.owner.email})"


def _golden_sources(golden_row: Mapping[str, Any]) -> dict[str, str]:
    sources = golden_row.get("attribute_sources")
    if isinstance(sources, str):
        return dict(orjson.loads(sources or "{}"))
    return dict(sources or {})


def _origin(
    field: DeliveryField,
    entity: str,
    attribute: Attribute,
    registry: OwnershipRegistry,
    golden_row: Mapping[str, Any] | None,
) -> str | None:
    if field.values_from != GOLDEN_RECORD:
        return field.values_from
    if golden_row is None:
        return None
    if attribute.name in registry.entity(entity).key:
        return attribute.system
    return _golden_sources(golden_row).get(attribute.name)


def field_problems(
    field: DeliveryField,
    value: Any,
    delivery: Delivery,
    registry: OwnershipRegistry,
    golden_row: Mapping[str, Any] | None,
) -> list[str]:
    """Why this field's value may not be written (empty: it may)."""
    problems = []
    where = f"{delivery.where}.fields.{field.name}"
    for entity, name in field.carries:
        attribute = registry.attribute(entity, name)
        owned = (
            f"{entity}.{name}, whose system of record is {_precedence_text(attribute)}, "
            f"owned by {_owner_text(attribute)}"
        )
        if field.values_from == GOLDEN_RECORD and golden_row is None:
            problems.append(
                f"{field.name} carries {owned}; there is no golden record row (core.customers) for "
                "this write, so no system of record vouches for its value: run core/customers first"
            )
            continue
        origin = _origin(field, entity, attribute, registry, golden_row)
        if origin is None:
            if _present(value) and field.derived is None:
                problems.append(
                    f"{field.name} carries {owned}; no system has a value for it in core.customers, "
                    "yet the write carries one: the mapping took it from elsewhere. Correct it in "
                    f"{attribute.system} (the next sync carries it)"
                )
            continue
        if origin not in attribute.precedence:
            problems.append(
                f"{field.name} carries {owned}; this value was taken from {origin}, which is "
                f"neither. Correct it in {attribute.system} (the next sync carries it), or, if "
                f"{attribute.owner.email} agrees that {origin} may supply it, add {origin} to its "
                f"fallback in ownership.yaml (and check {where})"
            )
            continue
        if (
            field.values_from == GOLDEN_RECORD
            and field.derived is None
            and len(field.carries) == 1
            and len(attribute.columns) == 1
            and golden_row is not None
            and value != golden_row.get(attribute.columns[0])
        ):
            problems.append(
                f"{field.name} carries {owned}; the value written is not the one core.customers "
                f"took from {origin}, so it came from somewhere else (a mapping reading another "
                f"system). Correct it in {attribute.system} (the next sync carries it), or fix the "
                f"mapping (declared at {where})"
            )
    return problems


def write_refusal(
    intent: WriteIntent,
    registry: OwnershipRegistry,
    golden_row: Mapping[str, Any] | None = None,
) -> str | None:
    """The `ownership: ...` reason this write may not be enqueued, or None when every field may go.

    `golden_row`: the core.customers row (with attribute_sources) of the write's external id, for
    deliveries declared `values_from: golden_record`; ignored otherwise.
    """
    delivery = registry.delivery(intent.target, intent.entity)
    record = f"{intent.target}/{intent.entity} {intent.external_id}"
    undeclared = sorted(set(intent.payload) - set(delivery.fields))
    if undeclared:
        return (
            f"{REASON_PREFIX}{record}: field(s) {', '.join(undeclared)} not declared in "
            f"{registry.source.name} {delivery.where}.fields, so no attribute, system of record "
            "or owner answers for them: declare which attribute each carries, or drop it from "
            "the mapping"
        )
    problems = [
        problem
        for name, value in intent.payload.items()
        for problem in field_problems(delivery.fields[name], value, delivery, registry, golden_row)
    ]
    if not problems:
        return None
    return f"{REASON_PREFIX}{record}: " + "; ".join(problems)


def refuse_unowned_writes(
    plan: PlanResult,
    registry: OwnershipRegistry,
    golden_rows: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Move every intent that breaks the rule from the plan's intents to its quarantine.

    `golden_rows`: core.customers rows by customer_id (used by golden-record deliveries).
    Returns external id -> reason for each refused write.
    """
    refused = {}
    for intent in plan.intents:
        reason = write_refusal(intent, registry, golden_rows.get(intent.external_id))
        if reason is not None:
            refused[intent.external_id] = reason
    plan.quarantine_intents(refused, "ownership_refused")
    return refused


class OwnershipRefused(ValueError):
    """An operator's edit of a field whose owner is another system, without that owner's agreement."""


@dataclass(frozen=True)
class OwnerApproval:
    """One attribute an operator edited for a target that is not its system of record, and who agreed."""

    field: str
    attribute: str  # entity.attribute
    system_of_record: str
    owner: str  # the owner's key
    owner_email: str
    approved_by: str

    def as_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "attribute": self.attribute,
            "system_of_record": self.system_of_record,
            "owner": self.owner,
            "owner_email": self.owner_email,
            "approved_by": self.approved_by,
        }


def _is_owner(approved_by: str | None, attribute: Attribute) -> bool:
    wanted = (approved_by or "").strip().lower()
    return bool(wanted) and wanted in (attribute.owner.email.lower(), attribute.owner.key.lower())


def check_override(
    registry: OwnershipRegistry,
    target: str,
    entity: str,
    fields: Iterable[str],
    owner_approved_by: str | None = None,
) -> list[OwnerApproval]:
    """The owner approvals an operator's field edits need, all given; else OwnershipRefused saying why.

    `fields`: the edited fields, dotted for nested ones (billing_address.postal_code edits the field
    billing_address). An edit of an attribute whose system of record is the target itself needs no
    approval; any other needs `owner_approved_by` to name that attribute's owner (email or key).
    """
    delivery = registry.delivery(target, entity)
    target_system = registry.system_of_target(target)
    approvals, problems = [], []
    for edited in fields:
        top = edited.split(".", 1)[0]
        field = delivery.fields.get(top)
        if field is None:
            problems.append(
                f"{edited} is not a field {target}/{entity} writes carry (declared in "
                f"{registry.source.name} {delivery.where}.fields: {', '.join(delivery.fields)})"
            )
            continue
        for owning_entity, name in field.carries:
            attribute = registry.attribute(owning_entity, name)
            if attribute.system == target_system:
                continue  # the target is the system of record: the operator edits the owner's value
            label = edited if edited == name else f"{edited} ({owning_entity}.{name})"
            if not _is_owner(owner_approved_by, attribute):
                not_owner = (
                    f"{owner_approved_by!r} is not its registered owner; "
                    if owner_approved_by
                    else ""
                )
                problems.append(
                    f"{label} is owned by the {attribute.system} ({attribute.owner.name}, "
                    f"{attribute.owner.email}): {not_owner}correct it there, the next sync carries "
                    f"it; or, if its owner agreed, repeat with --owner-approved-by "
                    f"{attribute.owner.email}"
                )
                continue
            approvals.append(
                OwnerApproval(
                    edited,
                    f"{owning_entity}.{name}",
                    attribute.system,
                    attribute.owner.key,
                    attribute.owner.email,
                    str(owner_approved_by).strip(),
                )
            )
    if problems:
        raise OwnershipRefused("; ".join(problems))
    return approvals
