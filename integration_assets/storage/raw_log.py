"""The raw log: append-only, immutable batch files with a manifest, exactly what each source said.

Layout: <root>/<source>/<stream>/<batch_id>.jsonl plus <batch_id>.manifest.json (the JSONL file
becomes <batch_id>.jsonl.gz once the retention policy compresses it: same bytes inside). The JSONL file is
written to a temporary name and renamed into place; the manifest is written last and is the commit
marker, so a reader never sees half a batch. Nothing here needs the warehouse, so extraction never
waits for a warehouse lock. The extraction cursor is part of each manifest (`cursor_after`): the log
itself says how far we have read.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

MANIFEST_SUFFIX = ".manifest.json"
# A batch file compressed by the retention policy (storage/retention.py): `<batch>.jsonl.gz`, same bytes.
COMPRESSED_SUFFIX = ".gz"


def compressed_path(path: Path) -> Path:
    return path.with_name(path.name + COMPRESSED_SUFFIX)


def open_batch_file(path: Path) -> IO[bytes]:
    """A batch file for reading, plain or, once retention compressed it, from its gzip copy (the
    bytes read are the committed bytes either way; the manifest's sha256 still proves them)."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        compressed = compressed_path(path)
        if not compressed.exists():
            raise
        return gzip.open(compressed, "rb")


def sha256_of_stream(handle: IO[bytes]) -> str:
    """The sha256 of everything `handle` reads, a megabyte at a time."""
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def new_batch_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across processes."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class BatchManifest:
    source: str
    stream: str
    batch_id: str
    path: Path
    records: int
    sha256: str
    bytes: int
    details: dict[str, Any]

    @property
    def raw_ref_prefix(self) -> str:
        return f"raw/{self.source}/{self.stream}/{self.batch_id}"

    def raw_ref(self, record_index: int) -> str:
        return f"{self.raw_ref_prefix}#{record_index}"


@dataclass
class BatchWriter:
    """Streams records of one batch to disk; `commit` makes the batch visible, atomically."""

    log: RawLog
    source: str
    stream: str
    batch_id: str
    _tmp_path: Path
    _handle: Any
    _hasher: Any = field(default_factory=hashlib.sha256)
    records: int = 0
    bytes: int = 0

    def append(self, record: dict[str, Any]) -> int:
        line = orjson.dumps(record) + b"\n"
        self._handle.write(line)
        self._hasher.update(line)
        self.bytes += len(line)
        self.records += 1
        return self.records - 1

    def commit(self, details: dict[str, Any]) -> BatchManifest:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        folder = self.log.stream_dir(self.source, self.stream)
        final_path = folder / f"{self.batch_id}.jsonl"
        os.replace(self._tmp_path, final_path)
        manifest = {
            "source": self.source,
            "stream": self.stream,
            "batch_id": self.batch_id,
            "file": final_path.name,
            "records": self.records,
            "sha256": self._hasher.hexdigest(),
            "bytes": self.bytes,
            "committed_at": datetime.now(UTC).isoformat(),
            "details": details,
        }
        manifest_tmp = folder / f".{self.batch_id}.manifest.tmp"
        manifest_tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.replace(manifest_tmp, folder / f"{self.batch_id}{MANIFEST_SUFFIX}")
        return self.log.read_manifest(folder / f"{self.batch_id}{MANIFEST_SUFFIX}")

    def abort(self) -> None:
        self._handle.close()
        self._tmp_path.unlink(missing_ok=True)


class RawLog:
    def __init__(self, root: Path):
        self.root = Path(root)

    def stream_dir(self, source: str, stream: str) -> Path:
        folder = self.root / source / stream
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def open_batch(self, source: str, stream: str, batch_id: str | None = None) -> BatchWriter:
        batch_id = batch_id or new_batch_id()
        tmp_path = self.stream_dir(source, stream) / f".{batch_id}.jsonl.tmp"
        return BatchWriter(self, source, stream, batch_id, tmp_path, tmp_path.open("wb"))

    def read_manifest(self, path: Path) -> BatchManifest:
        raw = orjson.loads(path.read_bytes())
        return BatchManifest(
            source=raw["source"],
            stream=raw["stream"],
            batch_id=raw["batch_id"],
            path=path.parent / raw["file"],
            records=raw["records"],
            sha256=raw["sha256"],
            bytes=raw["bytes"],
            details=raw.get("details", {}),
        )

    def batches(self, source: str, stream: str) -> list[BatchManifest]:
        """Committed batches in the order they were taken."""
        folder = self.root / source / stream
        if not folder.exists():
            return []
        return [self.read_manifest(path) for path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}"))]

    def latest(self, source: str, stream: str) -> BatchManifest | None:
        batches = self.batches(source, stream)
        return batches[-1] if batches else None

    def read_records(self, manifest: BatchManifest) -> Iterator[dict[str, Any]]:
        with open_batch_file(manifest.path) as handle:
            for line in handle:
                yield orjson.loads(line)

    def read_bytes(self, manifest: BatchManifest) -> bytes:
        """The batch file's committed bytes (a landed warehouse file is one batch of its own)."""
        with open_batch_file(manifest.path) as handle:
            return handle.read()

    def verify(self, manifest: BatchManifest) -> bool:
        """True when the batch's bytes (kept plain, or compressed by retention) are byte-for-byte
        what was committed."""
        with open_batch_file(manifest.path) as handle:
            return sha256_of_stream(handle) == manifest.sha256

    def payloads(self, raw_refs: Iterable[str]) -> dict[str, Any]:
        """The payload of each `raw/<source>/<stream>/<batch>#<index>` reference, reading each batch once."""
        return dict(self.iter_payloads(raw_refs))

    def iter_payloads(self, raw_refs: Iterable[str]) -> Iterator[tuple[str, Any]]:
        """(reference, payload) for each reference, in file order, reading each batch once and
        holding one record at a time (a peak-day poll is hundreds of megabytes of payloads);
        raises KeyError naming what was not found, after yielding everything that was."""
        refs = list(raw_refs)
        wanted: dict[tuple[str, str, str], set[int]] = {}
        for ref in refs:
            location, _, index = ref.rpartition("#")
            _, source, stream, batch_id = location.split("/", 3)
            wanted.setdefault((source, stream, batch_id), set()).add(int(index))
        found: set[str] = set()
        for (source, stream, batch_id), indices in wanted.items():
            manifest_path = self.root / source / stream / f"{batch_id}{MANIFEST_SUFFIX}"
            if not manifest_path.exists():
                raise FileNotFoundError(
                    f"raw batch {source}/{stream}/{batch_id} is not in {self.root}"
                )
            manifest = self.read_manifest(manifest_path)
            for record in self.read_records(manifest):
                if record["record_index"] in indices:
                    ref = manifest.raw_ref(record["record_index"])
                    found.add(ref)
                    yield ref, record.get("payload")
        missing = [ref for ref in refs if ref not in found]
        if missing:
            raise KeyError(f"raw records not found: {', '.join(missing[:5])}")
