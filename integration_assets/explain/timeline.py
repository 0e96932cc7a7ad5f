"""The pure part of explain: typed timeline entries, their order, and what each system knew when.

An entry is one thing a system said about an entity (a storefront order event, a charge, a WMS file
line, a write we made), with when it happened by that system's own clock and the reference of the
exact record it came from (a raw log reference `raw/<source>/<stream>/<batch>#<index>` wherever
there is one). Nothing here reads the warehouse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.streams.money import format_minor_units

# Where a system sits when two entries share a time: the source of the fact before what follows it.
SYSTEM_ORDER = ("storefront", "payments", "warehouse", "inventory", "erp", "crm", "wms", "operator")


@dataclass(frozen=True)
class Entry:
    """One fact in an entity's story."""

    at: datetime | None  # naive UTC, as the warehouse keeps it; None when the source gave no time
    system: str  # storefront | payments | warehouse | inventory | erp | crm | wms | operator
    kind: str  # order_created, charge, dispute, shipment, rma_received, write_sent, ...
    summary: str  # one line for a person
    ref: str | None = None  # the raw reference (or the row) it came from
    state: str | None = None  # the system's state of the entity after this entry, when it says one

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "system": self.system,
            "kind": self.kind,
            "summary": self.summary,
            "ref": self.ref,
            "state": self.state,
        }


def iso(moment: datetime | None) -> str | None:
    """A naive-UTC warehouse timestamp as ISO 8601 with its Z; None stays None."""
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _system_rank(system: str) -> int:
    return SYSTEM_ORDER.index(system) if system in SYSTEM_ORDER else len(SYSTEM_ORDER)


def in_time_order(entries: Iterable[Entry]) -> list[Entry]:
    """Chronological; entries without a time last; ties by system, then in the order given (stable)."""
    indexed = list(enumerate(entries))
    indexed.sort(
        key=lambda pair: (
            pair[1].at is None,
            pair[1].at or datetime.min,
            _system_rank(pair[1].system),
            pair[0],
        )
    )
    return [entry for _, entry in indexed]


def knowledge(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """What each system knew when: per system, the newest entry that states the system's state.

    Ties go to the later entry in time order, so the result does not depend on how entries arrived.
    """
    latest: dict[str, Entry] = {}
    for entry in in_time_order(entries):
        if entry.state is not None:
            latest[entry.system] = entry
    return [
        {
            "system": system,
            "state": entry.state,
            "as_of": iso(entry.at),
            "ref": entry.ref,
        }
        for system, entry in sorted(latest.items(), key=lambda item: _system_rank(item[0]))
    ]


def money(amount_minor: int | None, currency: str | None) -> str:
    """Minor units as a readable amount with its currency: `290.00 USD`."""
    if amount_minor is None:
        return "?"
    code = (currency or "USD").upper()
    return f"{format_minor_units(int(amount_minor), code)} {code}"
