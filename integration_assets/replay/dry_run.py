"""What a changed transformation would do to each target, listed before anything is written.

The replayed core state is planned with the live outbox's history (so invoiced orders, adjustment
documents and reservations already made are planned as the next live delivery would plan them), and
each intended document is compared with what the live outbox last intended for it: its newest row
that was not superseded, per (target, entity, external id). That is exactly what the next delivery
would enqueue: a document whose content the outbox already holds is never sent again.

"No longer intended" is judged against the live state planned by the same code with the same
history: the documents a difference in core state stops. A document the outbox holds that neither
side plans any more is listed apart, as `not_planned` (information, not a change): a settled
adjustment document stays in the outbox as sent and is planned by nobody, and so is a document a
changed mapping stopped producing; a delivery never deletes at a target either way.
Nothing is enqueued or sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from integration_assets.replay.intended import IntendedState
from integration_assets.storage.warehouse import Warehouse

NEW = "new"
CHANGED = "changed"
NO_LONGER_INTENDED = "no_longer_intended"
NOT_PLANNED = "not_planned"


@dataclass(frozen=True)
class LastIntended:
    """The live outbox's newest non-superseded row for one document."""

    payload: dict[str, Any]
    payload_hash: str
    status: str


@dataclass(frozen=True)
class DocumentChange:
    target: str
    entity: str
    external_id: str
    change: str  # new | changed | no_longer_intended
    fields: tuple[str, ...] = ()  # for a changed document: the dotted paths that differ
    live_status: str | None = None  # the live row's status (sent, dead, awaiting_approval...)

    def as_text(self) -> str:
        text = f"{self.change:<18} {self.target}/{self.entity} {self.external_id}"
        if self.fields:
            text += f": {', '.join(self.fields)}"
        if self.live_status:
            text += f" (live: {self.live_status})"
        return text


@dataclass
class DryRun:
    changes: list[DocumentChange] = field(default_factory=list)
    # In the live outbox, planned by neither side (settled adjustments; documents a mapping dropped).
    not_planned: list[DocumentChange] = field(default_factory=list)
    not_compared: dict[tuple[str, str], str] = field(default_factory=dict)

    def by_target(self) -> dict[str, list[DocumentChange]]:
        grouped: dict[str, list[DocumentChange]] = {}
        for change in self.changes:
            grouped.setdefault(change.target, []).append(change)
        return grouped


def last_intended(warehouse: Warehouse) -> dict[tuple[str, str, str], LastIntended]:
    """Per (target, entity, external id): the newest outbox row that was not superseded."""
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(
            """
            SELECT target, entity, external_id, payload, payload_hash, status FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY target, entity, external_id ORDER BY sequence DESC) AS newest
                FROM ops.outbox WHERE status <> 'superseded')
            WHERE newest = 1
            """
        ).fetchall()
    return {
        (target, entity, external_id): LastIntended(orjson.loads(payload), payload_hash, status)
        for target, entity, external_id, payload, payload_hash, status in rows
    }


def changed_fields(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths (`lines[0].amount_minor`) where two JSON values differ; [] when equal."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        found: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                found.append(child)
            else:
                found += changed_fields(before[key], after[key], child)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (left, right) in enumerate(zip(before, after, strict=True)):
            found += changed_fields(left, right, f"{path}[{index}]")
        return found
    return [] if before == after else [path or "(whole payload)"]


def compare(
    intended: IntendedState,
    live: Mapping[tuple[str, str, str], LastIntended],
    live_intended: IntendedState,
) -> DryRun:
    """New and changed documents (with the fields) against the outbox `live`, and the documents
    `live_intended` plans that `intended` no longer does, per (target, entity)."""
    result = DryRun(not_compared={**live_intended.not_computed, **intended.not_computed})
    for (target, entity), plan in sorted(intended.plans.items()):
        if (target, entity) not in live_intended.plans:
            continue
        wanted = {intent.external_id: intent for intent in plan.intents}
        for external_id, intent in sorted(wanted.items()):
            before = live.get((target, entity, external_id))
            if before is None:
                result.changes.append(DocumentChange(target, entity, external_id, NEW))
            elif before.payload_hash != intent.content_hash:
                fields = changed_fields(before.payload, dict(intent.payload))
                result.changes.append(
                    DocumentChange(
                        target, entity, external_id, CHANGED, tuple(fields), before.status
                    )
                )
        planned_live = {i.external_id for i in live_intended.plans[(target, entity)].intents}
        result.changes += [
            DocumentChange(
                target,
                entity,
                external_id,
                NO_LONGER_INTENDED,
                (),
                live[(target, entity, external_id)].status
                if (target, entity, external_id) in live
                else None,
            )
            for external_id in sorted(planned_live - set(wanted))
        ]
        result.not_planned += [
            DocumentChange(target, entity, external_id, NOT_PLANNED, (), row.status)
            for (row_target, row_entity, external_id), row in sorted(live.items())
            if (row_target, row_entity) == (target, entity)
            and external_id not in wanted
            and external_id not in planned_live
        ]
    return result


def render(dry_run: DryRun) -> Iterable[str]:
    if not dry_run.changes:
        yield "dry run: no target would change"
    for target, changes in sorted(dry_run.by_target().items()):
        yield f"dry run: {target}: {len(changes)} document(s) would change"
        for change in changes:
            yield f"  {change.as_text()}"
    if dry_run.not_planned:
        yield (
            f"dry run: {len(dry_run.not_planned)} document(s) in the live outbox planned by neither "
            "side (settled adjustments, or dropped by a mapping; nothing is deleted at a target):"
        )
        for change in dry_run.not_planned:
            yield f"  {change.as_text()}"
    for (target, entity), reason in sorted(dry_run.not_compared.items()):
        yield f"dry run: {target}/{entity} not compared: {reason}"
