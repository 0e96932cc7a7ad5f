"""The raw log, opened so that nothing can be written into it: replay reads raw, never lands it."""

from __future__ import annotations

from pathlib import Path

from integration_assets.storage.raw_log import BatchWriter, RawLog
from integration_assets.storage.resources import RawLogResource


class RawLogIsReadOnly(RuntimeError):
    """Something tried to land a batch during a replay (an extract or landing asset was selected)."""


class ReadOnlyRawLog(RawLog):
    """A RawLog that reads like the real one and refuses every write (and creates no folder)."""

    def stream_dir(self, source: str, stream: str) -> Path:
        return self.root / source / stream

    def open_batch(self, source: str, stream: str, batch_id: str | None = None) -> BatchWriter:
        raise RawLogIsReadOnly(
            f"replay must not write into the raw log ({self.root}): tried to land {source}/{stream}"
        )


class ReadOnlyRawLogResource(RawLogResource):
    """`raw_log` for a replay run: the same root, read-only."""

    def log(self) -> RawLog:
        return ReadOnlyRawLog(Path(self.root))
