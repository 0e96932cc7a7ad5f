"""Which landed webhook batches a sensor has already handled: a watermark plus the ids seen above it.

Batch ids sort by the moment the batch was opened (`20261129T182736123456Z-<random>`, see
`storage.raw_log.new_batch_id`), but a batch becomes visible when its manifest is committed, a few
milliseconds later. So "newer than the last id handled" alone could skip a batch opened just before
another and committed just after it, and two batches of the same microsecond sort by their random
suffix. The cursor therefore keeps every id handled within `GRACE` of the newest one (the set), and
a watermark `GRACE` behind the newest: an id at or below the watermark counts as handled. A batch
that takes longer than `GRACE` between open and commit would be missed by the sensor, though not by
staging, which stages every batch it has not staged whatever the sensor does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GRACE = timedelta(minutes=10)
_ID_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_ID_TIME_LENGTH = len("20261129T182736123456Z")


def batch_time(batch_id: str) -> datetime | None:
    """When a batch was opened, from its id; None for an id of another shape."""
    try:
        return datetime.strptime(batch_id[:_ID_TIME_LENGTH], _ID_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def id_floor(moment: datetime) -> str:
    """The smallest id of a batch opened at `moment` or later: every id of an earlier batch sorts below it."""
    return moment.astimezone(UTC).strftime(_ID_TIME_FORMAT)


@dataclass(frozen=True)
class BatchCursor:
    watermark: str = ""  # ids <= watermark are handled
    seen: frozenset[str] = frozenset()  # ids > watermark already handled

    @classmethod
    def parse(cls, text: str | None) -> BatchCursor:
        if not text:
            return cls()
        state = json.loads(text)
        return cls(str(state.get("watermark", "")), frozenset(state.get("seen", [])))

    def dumps(self) -> str:
        return json.dumps({"watermark": self.watermark, "seen": sorted(self.seen)})

    def is_new(self, batch_id: str) -> bool:
        return batch_id > self.watermark and batch_id not in self.seen

    def handled(self, batch_ids: Iterable[str]) -> BatchCursor:
        """The cursor once `batch_ids` are handled too: the watermark moves to `GRACE` before the
        newest id handled (never back), and ids at or below it leave the set."""
        seen = self.seen | frozenset(batch_ids)
        times = [moment for moment in map(batch_time, seen) if moment is not None]
        watermark = max(self.watermark, id_floor(max(times) - GRACE)) if times else self.watermark
        return BatchCursor(watermark, frozenset(i for i in seen if i > watermark))
