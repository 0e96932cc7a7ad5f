"""Product history (SCD2): every staged version of every SKU -> one row per period of unchanged attributes.

Pure, no Dagster, no warehouse. The attribute set of a SKU is its price (minor units and currency),
whether it is available, its category and its bundle definition. Versions are ordered by their
**source version key** (`updated_at`, then payload hash, so ties break the same way every time):

- exact duplicates (same SKU, `updated_at` and payload hash) count once (the smallest `raw_ref` is kept);
- two versions at the same `updated_at` with different content are a conflict: the higher payload
  hash wins (the same rule as the order stream) and the other is counted, never a zero-length row;
- consecutive versions with the same attributes collapse into one row (a product update that changed
  another variant, or the title, is not a change of this SKU);
- a change closes the previous row at the new version's `updated_at` (`valid_to`, exclusive) and opens
  a new one; the newest row has `valid_to = None` (current).

The result depends only on the *set* of versions, never on the order they arrive in, so replaying the
raw log, re-reading a lookback window or promoting batches in another order gives the same history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

ATTRIBUTES = ("price_minor", "currency", "available", "category", "bundle")


@dataclass(frozen=True)
class SkuVersion:
    """One SKU as one product version showed it (a staged variant row)."""

    sku: str
    updated_at: datetime
    payload_hash: str
    price_minor: int
    currency: str
    available: bool
    category: str | None
    bundle: str | None  # canonical JSON of [{sku, quantity}] sorted by sku, or None: not a bundle
    product_id: int = 0
    variant_id: int = 0
    raw_ref: str = ""

    @property
    def version_key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.payload_hash)

    @property
    def source_version(self) -> str:
        return f"{self.updated_at.isoformat()}#{self.payload_hash[:12]}"

    @property
    def attributes(self) -> tuple:
        return tuple(getattr(self, name) for name in ATTRIBUTES)


@dataclass(frozen=True)
class HistoryRow:
    sku: str
    product_id: int
    variant_id: int
    price_minor: int
    currency: str
    available: bool
    category: str | None
    bundle: str | None
    valid_from: datetime
    valid_to: datetime | None  # None: the current row
    source_version: str
    raw_ref: str

    @property
    def is_current(self) -> bool:
        return self.valid_to is None


@dataclass
class HistoryStats:
    versions: int = 0
    duplicates: int = 0
    conflicts: int = 0
    unchanged: int = 0  # versions that collapsed into the row before them
    rows: int = 0
    conflict_details: list[tuple[str, datetime, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "versions": self.versions,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "unchanged": self.unchanged,
            "rows": self.rows,
        }


def build_history(versions: Iterable[SkuVersion]) -> tuple[list[HistoryRow], HistoryStats]:
    """The SCD2 history of every SKU in `versions`, sorted by (sku, valid_from).

    Balance: versions = duplicates + conflicts + unchanged + rows.
    """
    stats = HistoryStats()
    by_sku: dict[str, dict[tuple[datetime, str], SkuVersion]] = {}
    for version in versions:
        stats.versions += 1
        seen = by_sku.setdefault(version.sku, {})
        kept = seen.get(version.version_key)
        if kept is None:
            seen[version.version_key] = version
            continue
        stats.duplicates += 1
        if (
            version.raw_ref < kept.raw_ref
        ):  # the earliest landing is the reference, whatever the order
            seen[version.version_key] = version
    rows: list[HistoryRow] = []
    for sku in sorted(by_sku):
        ordered = sorted(by_sku[sku].values(), key=lambda v: v.version_key)
        # Same updated_at, different content: the highest payload hash (last in order) wins.
        winners: list[SkuVersion] = []
        for version in ordered:
            if winners and winners[-1].updated_at == version.updated_at:
                loser = winners[-1]
                stats.conflicts += 1
                stats.conflict_details.append(
                    (sku, version.updated_at, version.payload_hash, loser.payload_hash)
                )
                winners[-1] = version
            else:
                winners.append(version)
        opened: SkuVersion | None = None
        for version in winners:
            if opened is not None and version.attributes == opened.attributes:
                stats.unchanged += 1
                continue
            if opened is not None:
                rows.append(_row(opened, valid_to=version.updated_at))
            opened = version
        if opened is not None:
            rows.append(_row(opened, valid_to=None))
    stats.rows = len(rows)
    return rows, stats


def _row(version: SkuVersion, valid_to: datetime | None) -> HistoryRow:
    return HistoryRow(
        sku=version.sku,
        product_id=version.product_id,
        variant_id=version.variant_id,
        price_minor=version.price_minor,
        currency=version.currency,
        available=version.available,
        category=version.category,
        bundle=version.bundle,
        valid_from=version.updated_at,
        valid_to=valid_to,
        source_version=version.source_version,
        raw_ref=version.raw_ref,
    )
