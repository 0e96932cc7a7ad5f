"""Schema drift: the shape of a batch's raw payloads compared with the stream's contract.

`observe` counts, per top-level field, in how many records it is present, null, and of which JSON
type. `compare` turns that into drift events against a contract:
- **added** (not breaking): a field the contract neither types (`fields`, or a field's `source`)
  nor lists as known (`known_fields`). The batch proceeds; the event is recorded and notified.
- **removed** (breaking): a required field missing or null in more than the contract's allowed
  share of the batch (`batch_rules.max_required_field_missing_ratio`, 20% by default). Below that
  share, the few records without it are bad rows, quarantined by staging, not drift.
- **renamed** (breaking): a removed required field while a new field of a compatible type is
  present in about as many records: the message suggests the new name.
- **retyped** (breaking): a required field whose values have another JSON type than the contract's
  in more than the allowed share of the batch.
A breaking event blocks the batch's promotion until a new contract version accepts the change.
Every message names the field, the contract and its version.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from integration_assets.contracts import Contract, FieldRule

ADDED, REMOVED, RENAMED, RETYPED = "added", "removed", "renamed", "retyped"
BREAKING_KINDS = (REMOVED, RENAMED, RETYPED)
DEFAULT_MISSING_RATIO = 0.2

# The JSON types a value of each contract type may arrive as (money: Shopify sends decimal strings,
# and sometimes JSON numbers).
JSON_TYPES_FOR = {
    "integer": {"integer"},
    "string": {"string"},
    "timestamp": {"string"},
    "money": {"string", "number", "integer"},
    "currency": {"string"},
    "currency_lower": {"string"},
    "list": {"array"},
    "object": {"object"},
    "boolean": {"boolean"},
    "minor_units": {"integer"},
    "unix_time": {"integer"},
}
# How alike two names must be (difflib ratio) for a new field to be offered as a rename.
RENAME_NAME_SIMILARITY = 0.5


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


@dataclass
class FieldObservation:
    present: int = 0
    null: int = 0
    types: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class BatchShape:
    """What a batch's payloads looked like: `records` JSON objects (others counted apart)."""

    records: int
    not_objects: int
    fields: dict[str, FieldObservation]

    def present(self, name: str) -> int:
        observed = self.fields.get(name)
        return observed.present - observed.null if observed else 0


def _json_type_of_class(kind: type) -> str:
    """`json_type` of any value of class `kind`."""
    if kind is type(None):
        return "null"
    for base, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ):
        if issubclass(kind, base):
            return name
    return kind.__name__


def observe(payloads: Iterable[Any]) -> BatchShape:
    """Count, for every top-level field of every payload, presence, nulls and JSON types."""
    records = not_objects = 0
    # (field, Python class of its value) counted in C, then folded into JSON types per field; fields
    # and their types come out in the order first seen, as a record-by-record count would give.
    seen: Counter[tuple[str, type]] = Counter()
    for payload in payloads:
        if not isinstance(payload, dict):
            not_objects += 1
            continue
        records += 1
        seen.update(zip(payload, map(type, payload.values()), strict=True))
    fields: dict[str, FieldObservation] = {}
    for (name, kind), count in seen.items():
        observed = fields.setdefault(str(name), FieldObservation())
        observed.present += count
        observed.types[_json_type_of_class(kind)] += count
        if kind is type(None):
            observed.null += count
    return BatchShape(records, not_objects, fields)


@dataclass(frozen=True)
class DriftEvent:
    kind: str
    field: str
    detail: str
    records_affected: int
    records_read: int

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING_KINDS


def declared_names(contract: Contract) -> set[str]:
    """Top-level payload names the contract knows: its fields (by their first dotted part), the
    names they are read from, and its known fields."""
    names = {name.split(".")[0] for rule in contract.fields for name in rule.source_names}
    return names | set(contract.known_fields)


def _types_text(types: Counter[str]) -> str:
    return ", ".join(name for name, _ in types.most_common())


def _rename_candidate(
    rule: FieldRule, missing: int, new_fields: dict[str, FieldObservation]
) -> str | None:
    """A new field that could be `rule` under another name: a compatible type, present (not null)
    in about as many records as `rule` is missing from, and a name alike enough."""
    expected = JSON_TYPES_FOR[rule.type]
    candidates = []
    for name, observed in new_fields.items():
        non_null = observed.present - observed.null
        compatible = sum(count for kind, count in observed.types.items() if kind in expected)
        similarity = difflib.SequenceMatcher(None, rule.name, name).ratio()
        if (
            non_null >= 0.8 * missing
            and compatible >= 0.8 * non_null
            and similarity >= RENAME_NAME_SIMILARITY
        ):
            candidates.append((similarity, name))
    return max(candidates)[1] if candidates else None


def compare(shape: BatchShape, contract: Contract) -> list[DriftEvent]:
    """Drift events of one batch against `contract`, breaking ones first, each named and explained."""
    if shape.records == 0:
        return []
    ratio = contract.batch_rules.get("max_required_field_missing_ratio", DEFAULT_MISSING_RATIO)
    against = f"against contract {contract.label}"
    declared = declared_names(contract)
    new_fields = {name: seen for name, seen in shape.fields.items() if name not in declared}
    events: list[DriftEvent] = []
    renamed_to: set[str] = set()
    for rule in contract.fields:
        if not rule.required or "." in rule.name:
            continue
        present = min(shape.records, sum(shape.present(name) for name in rule.source_names))
        missing = shape.records - present
        if missing > ratio * shape.records:
            new_name = _rename_candidate(rule, missing, new_fields)
            where = (
                f"required field '{rule.name}' is missing in {missing} of {shape.records} records"
            )
            if new_name is not None:
                renamed_to.add(new_name)
                events.append(
                    DriftEvent(
                        RENAMED,
                        rule.name,
                        f"{where} (renamed to '{new_name}'?) {against}",
                        missing,
                        shape.records,
                    )
                )
            else:
                events.append(
                    DriftEvent(REMOVED, rule.name, f"{where} {against}", missing, shape.records)
                )
            continue
        expected = JSON_TYPES_FOR[rule.type]
        other_types: Counter[str] = Counter()
        for name in rule.source_names:
            observed = shape.fields.get(name)
            if observed is not None:
                other_types.update(
                    {
                        kind: n
                        for kind, n in observed.types.items()
                        if kind not in expected | {"null"}
                    }
                )
        retyped = sum(other_types.values())
        if retyped > ratio * shape.records:
            events.append(
                DriftEvent(
                    RETYPED,
                    rule.name,
                    f"required field '{rule.name}' is {_types_text(other_types)} in {retyped} of "
                    f"{shape.records} records, where the contract's type {rule.type} is "
                    f"{' or '.join(sorted(expected))} in JSON, {against}",
                    retyped,
                    shape.records,
                )
            )
    for name, observed in sorted(new_fields.items()):
        if name in renamed_to:
            continue
        events.append(
            DriftEvent(
                ADDED,
                name,
                f"new field '{name}' ({_types_text(observed.types)}) in {observed.present} of "
                f"{shape.records} records is not in contract {contract.label}",
                observed.present,
                shape.records,
            )
        )
    return events


def batch_drift(payloads: Iterable[Any], contract: Contract) -> list[DriftEvent]:
    """The drift events of one batch's raw payloads against `contract` (`observe`, then `compare`)."""
    return compare(observe(payloads), contract)


def drift_verdict(events: Iterable[DriftEvent], contract_label: str) -> tuple[bool, str]:
    """The blocking drift check's verdict on one batch: fails on any breaking event, naming each."""
    events = list(events)
    breaking = [event.detail for event in events if event.breaking]
    if breaking:
        return False, "schema drift: " + "; ".join(breaking)
    added = sorted(event.field for event in events if event.kind == ADDED)
    text = f"no breaking drift against contract {contract_label}"
    return True, text + (f" (new fields recorded: {', '.join(added)})" if added else "")
