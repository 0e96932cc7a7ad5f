"""Count-balance equations: every record read is accounted for, and the books say so."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Balance:
    """`left` terms must add up to `right` terms, e.g. read = staged + quarantined + duplicates."""

    name: str
    left: dict[str, int]
    right: dict[str, int]

    @property
    def left_total(self) -> int:
        return sum(self.left.values())

    @property
    def right_total(self) -> int:
        return sum(self.right.values())

    @property
    def holds(self) -> bool:
        return self.left_total == self.right_total

    def as_text(self) -> str:
        def side(terms: dict[str, int]) -> str:
            return " + ".join(f"{name} ({value})" for name, value in terms.items()) or "0"

        verdict = (
            "holds"
            if self.holds
            else f"DOES NOT HOLD (off by {self.left_total - self.right_total})"
        )
        return f"{side(self.left)} = {side(self.right)}: {verdict}"

    def as_dict(self) -> dict:
        return {
            "equation": self.name,
            "left": dict(self.left),
            "right": dict(self.right),
            "left_total": self.left_total,
            "right_total": self.right_total,
            "holds": self.holds,
            "text": self.as_text(),
        }
