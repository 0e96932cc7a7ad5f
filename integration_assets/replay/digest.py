"""A state digest: sha256 per table and per delivery (target, entity), and one over all of them.

Computed the same way on both sides (the live warehouse and a replay of its raw log), so "equal"
means the state the code derives from raw is the same however many runs built it.

What it covers:
- every base table of `staging`, `core` and `reporting`, plus the record-level quarantines
  (`ops.quarantine`, `ops.file_quarantine`) and the gate verdicts (`ops.batch_gates`): rows as a
  multiset (each row serialized canonically, the lines sorted), without the bookkeeping columns
  in `BOOKKEEPING_COLUMNS`, which say when and in which run a row was written, not what it is;
- the delivery-intended state (`intended.py`): per (target, entity), the set of (external id,
  content hash of the intended payload, approval rule) plus the (external id, reason) of every write
  that could not be built, as the planners compute it from the core state with an EMPTY outbox.

What it does not cover, and why:
- ops.outbox, ops.audit_*, ops.operator_actions, ops.count_balances, ops.mapping_quarantine, and the
  other ops books: what the targets answered, what people decided and what each run recorded are
  not in raw. For the same reason the digest's delivery part ignores outbox history: adjustment
  documents for invoiced orders edited later, frozen invoiced sales orders, releases of reservations
  once made, dead letters and operator overrides all depend on what the targets already hold;
- views (`core.products_current`): they are computed from the tables digested;
- `reporting.orders_by_hour`: hourly-partitioned, built for the hours someone backfilled or the
  schedule refreshed, not by the run that replays everything; replay leaves partitioned assets out;
- `reporting.integration_health`: the health of the operation (how long ago, how many failed
  attempts, dead letters, a person's interventions), measured from the ops books and the clock at
  the moment it ran, not derived from raw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

from integration_assets.storage.warehouse import Warehouse

DIGESTED_SCHEMAS = ("staging", "core", "reporting")
DIGESTED_OPS_TABLES = ("ops.quarantine", "ops.file_quarantine", "ops.batch_gates")
# Partitioned marts: built per window on demand, so their content depends on which windows were built.
NOT_REPLAYED_TABLES = ("reporting.orders_by_hour", "reporting.integration_health")

# Columns that record when and by which run a row was written: they differ run by run.
BOOKKEEPING_COLUMNS = frozenset(
    {
        "run_id",
        "staged_run_id",
        "staged_at",
        "promoted_run_id",
        "promoted_at",
        "detected_run_id",
        "quarantined_run_id",
        "quarantined_at",
        "evaluated_run_id",
        "evaluated_at",
    }
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_row(values: Iterable[Any]) -> bytes:
    """One row as canonical JSON (sorted keys in nested JSON values, ISO timestamps)."""
    return orjson.dumps(list(values), default=_plain, option=orjson.OPT_SORT_KEYS)


def multiset_digest(lines: Iterable[bytes]) -> str:
    """sha256 over the sorted lines: the same rows in any order give the same digest."""
    hasher = hashlib.sha256()
    for line in sorted(lines):
        hasher.update(line)
        hasher.update(b"\n")
    return hasher.hexdigest()


@dataclass(frozen=True)
class PartDigest:
    """One table, or one delivery (target, entity)."""

    name: str
    rows: int
    sha256: str
    note: str = ""  # e.g. the columns left out, or why a delivery part was not computed


@dataclass
class StateDigest:
    parts: dict[str, PartDigest] = field(default_factory=dict)

    @property
    def total(self) -> str:
        return multiset_digest(
            f"{part.name} {part.rows} {part.sha256}".encode() for part in self.parts.values()
        )

    def differing(self, other: StateDigest) -> list[str]:
        """Names of the parts whose digest differs, or that one side lacks."""
        names = sorted(set(self.parts) | set(other.parts))
        return [
            name
            for name in names
            if (self.parts.get(name) and self.parts[name].sha256)
            != (other.parts.get(name) and other.parts[name].sha256)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "parts": {
                name: {"rows": part.rows, "sha256": part.sha256, "note": part.note}
                for name, part in self.parts.items()
            },
        }


def digested_tables(con) -> list[str]:
    """`schema.table` for every base table digested, in name order."""
    schemas = ", ".join(f"'{schema}'" for schema in DIGESTED_SCHEMAS)
    found = [
        f"{schema}.{table}"
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_type = 'BASE TABLE' AND (table_schema IN ({schemas}) "
            "OR table_schema || '.' || table_name IN ("
            + ", ".join(f"'{name}'" for name in DIGESTED_OPS_TABLES)
            + "))"
        ).fetchall()
    ]
    return sorted(name for name in found if name not in NOT_REPLAYED_TABLES)


def table_digest(con, qualified: str) -> PartDigest:
    columns = [row[0] for row in con.execute(f"DESCRIBE {qualified}").fetchall()]
    kept = [column for column in columns if column not in BOOKKEEPING_COLUMNS]
    left_out = [column for column in columns if column in BOOKKEEPING_COLUMNS]
    selected = ", ".join(f'"{column}"' for column in kept)
    rows = con.execute(f"SELECT {selected} FROM {qualified}").fetchall()
    # The column names are part of what is hashed: a renamed or added column is a difference.
    lines = [canonical_row(row) for row in rows]
    lines.append(b"#columns " + canonical_row(kept))
    note = f"without {', '.join(left_out)}" if left_out else ""
    return PartDigest(qualified, len(rows), multiset_digest(lines), note)


def tables_digest(warehouse: Warehouse) -> dict[str, PartDigest]:
    """A digest per digested table (opened read-only: computing a digest writes nothing)."""
    with warehouse.connect(read_only=True) as con:
        return {name: table_digest(con, name) for name in digested_tables(con)}


def state_digest(
    warehouse: Warehouse, intended: Mapping[str, PartDigest] | None = None
) -> StateDigest:
    """The tables' digests plus, when given, the delivery parts (`intended.intended_digests`)."""
    parts = dict(tables_digest(warehouse))
    parts.update(intended or {})
    return StateDigest(dict(sorted(parts.items())))
