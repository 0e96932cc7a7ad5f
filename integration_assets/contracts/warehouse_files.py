"""Load the warehouse (WMS) file contract: per file kind its prefix, key and columns in order.

`warehouse_files.yaml` is one versioned contract for every CSV file kind the WMS drops (shipments,
receipts, stock counts, return receipts, return authorizations). A column may say where the WMS now
sends it (`source: loc`, a rename a new version accepted): the file is then read from that header
name, and still from the column's own name in files from before the change. `known_columns` lists
header columns a kind's files carry that staging does not read: reviewed, so not schema drift.
The file is read strictly: an unknown key, a wrong type or a history that does not end at `version`
is one ContractError naming the file and the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from integration_assets.contracts.loader import ContractChange, ContractError, _ContractReader
from integration_assets.contracts.location import contract_file
from integration_assets.strict_yaml import load_yaml_file

FILENAME = "warehouse_files.yaml"
COLUMN_TYPES = ("text", "int", "timestamp")
CONTRACT_KEYS = {"name", "version", "stream", "system_of_record", "owner", "history", "kinds"}
KIND_KEYS = {"prefix", "description", "key", "columns", "known_columns"}
COLUMN_KEYS = {"name", "type", "required", "minimum", "allowed", "description", "pii", "source"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "text", "int" or "timestamp"
    required: bool = True
    minimum: int | None = None
    allowed: tuple[str, ...] = ()
    description: str = ""
    pii: bool = False
    # Where the WMS now sends this column (a rename a contract version accepted); None: under `name`.
    source: str | None = None

    @property
    def header_names(self) -> tuple[str, ...]:
        """The header names this column is read from, the preferred one first."""
        return (self.source, self.name) if self.source else (self.name,)


@dataclass(frozen=True)
class FileKind:
    kind: str  # shipments, receipts, stock_counts, return_receipts, return_authorizations
    prefix: str  # file names start with this: shipments_20261120T10.csv
    columns: tuple[Column, ...]
    description: str
    key: tuple[str, ...] = ()
    known_columns: tuple[str, ...] = ()  # sent, reviewed, not read: not drift

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class WarehouseFilesContract:
    name: str
    version: int
    stream: str
    system_of_record: str
    owner: str
    history: tuple[ContractChange, ...]
    kinds: Mapping[str, FileKind]

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class _WarehouseContractReader(_ContractReader):
    def column(self, raw: Any, path: str) -> Column:
        spec = self.mapping(raw, path, COLUMN_KEYS)
        column_type = spec.get("type")
        if column_type not in COLUMN_TYPES:
            raise self.fail(
                f"{path}.type", f"must be one of {list(COLUMN_TYPES)}, got {column_type!r}"
            )
        if "name" not in spec:
            raise self.fail(path, "missing name")
        minimum = spec.get("minimum")
        if minimum is not None and column_type != "int":
            raise self.fail(f"{path}.minimum", "only an int column has a minimum")
        return Column(
            name=self.string(spec["name"], f"{path}.name"),
            type=column_type,
            required=self.boolean(spec.get("required", True), f"{path}.required"),
            minimum=None if minimum is None else self.integer(minimum, f"{path}.minimum"),
            allowed=tuple(
                self.string(value, f"{path}.allowed[{i}]")
                for i, value in enumerate(self.listing(spec.get("allowed"), f"{path}.allowed"))
            ),
            description=str(spec.get("description", "")),
            pii=self.boolean(spec.get("pii", False), f"{path}.pii"),
            source=None
            if spec.get("source") is None
            else self.string(spec["source"], f"{path}.source"),
        )

    def strings(self, raw: Any, path: str) -> tuple[str, ...]:
        return tuple(
            self.string(item, f"{path}[{i}]") for i, item in enumerate(self.listing(raw, path))
        )

    def file_kind(self, kind: str, raw: Any, path: str) -> FileKind:
        spec = self.mapping(raw, path, KIND_KEYS)
        missing = sorted({"prefix", "description", "key", "columns"} - set(spec))
        if missing:
            raise self.fail(path, f"missing {', '.join(missing)}")
        columns = tuple(
            self.column(item, f"{path}.columns[{i}]")
            for i, item in enumerate(self.listing(spec["columns"], f"{path}.columns"))
        )
        if not columns:
            raise self.fail(f"{path}.columns", "a file kind needs at least one column")
        names = [column.name for column in columns]
        header_names = [name for column in columns for name in column.header_names]
        if len(header_names) != len(set(header_names)):
            raise self.fail(
                f"{path}.columns", f"a column name or source is used twice: {header_names}"
            )
        key = self.strings(spec["key"], f"{path}.key")
        unknown_key = [name for name in key if name not in names]
        if not key or unknown_key:
            raise self.fail(f"{path}.key", f"must name columns of the kind, got {list(key)}")
        known = self.strings(spec.get("known_columns"), f"{path}.known_columns")
        if set(known) & set(header_names):
            raise self.fail(f"{path}.known_columns", "lists a column the kind already reads")
        return FileKind(
            kind=kind,
            prefix=self.string(spec["prefix"], f"{path}.prefix"),
            columns=columns,
            description=self.string(spec["description"], f"{path}.description"),
            key=key,
            known_columns=known,
        )

    def warehouse_contract(self, raw: Any) -> WarehouseFilesContract:
        raw = self.mapping(raw, "", CONTRACT_KEYS)
        missing = sorted(CONTRACT_KEYS - {"history"} - set(raw))
        if missing:
            raise self.fail("", f"missing keys {missing}")
        version = self.integer(raw["version"], "version", minimum=1)
        kinds = {
            str(kind): self.file_kind(str(kind), spec, f"kinds.{kind}")
            for kind, spec in self.mapping(raw["kinds"], "kinds").items()
        }
        if not kinds:
            raise self.fail("kinds", "no file kinds")
        prefixes = [kind.prefix for kind in kinds.values()]
        if len(prefixes) != len(set(prefixes)):
            raise self.fail("kinds", f"a prefix is used twice: {prefixes}")
        return WarehouseFilesContract(
            name=self.string(raw["name"], "name"),
            version=version,
            stream=self.string(raw["stream"], "stream"),
            system_of_record=self.string(raw["system_of_record"], "system_of_record"),
            owner=self.string(raw["owner"], "owner"),
            history=self.history(raw.get("history"), version),
            kinds=kinds,
        )


def load_warehouse_files_contract_file(path: Path) -> WarehouseFilesContract:
    """The warehouse file contract in `path`, read strictly."""
    reader = _WarehouseContractReader(path)
    return reader.warehouse_contract(load_yaml_file(path, ContractError, "contract"))


def load_warehouse_files_contract() -> WarehouseFilesContract:
    """The contract as it stands now (the override directory's file if it holds one)."""
    path = contract_file(FILENAME)
    return _load_cached(path, path.stat().st_mtime_ns)


@cache
def _load_cached(path: Path, _mtime_ns: int) -> WarehouseFilesContract:
    return load_warehouse_files_contract_file(path)
