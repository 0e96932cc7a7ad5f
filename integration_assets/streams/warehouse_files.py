"""WMS file drops: read one CSV file of a known kind, all of it or none of it. Pure, no Dagster.

The warehouse (WMS) exports CSV files into an inbox folder: shipments, receipts, stock counts,
return receipts and return authorizations (RMA). What each kind holds is the versioned contract
`contracts/warehouse_files.yaml` (`FILE_KINDS` is built from it). A file is the unit of trust:
`read_warehouse_file` either returns every row typed (`ParsedFile`) or refuses the whole file
(`FileRejection`) with one reason an operator can act on, naming the line and the column of the
first problem. A half-read file is never returned.

Rules, in the order they are checked:

* `unknown_kind`   the name does not start with a known prefix (`shipments_`, `receipts_`, ...);
* `truncated`      the last line does not end with a newline, or it has fewer columns than the
                   header (the file was cut off while being written or copied);
* `wrong_encoding` the bytes are not UTF-8 (a leading UTF-8 byte-order mark is accepted);
* `empty_file`     no header line at all;
* `wrong_header`   a contract column missing from the header (removed, or renamed: the message
                   suggests the new name), the contract's columns in another order, or a column
                   name twice; a missing column is breaking schema drift (`FileRejection.drift`);
* `retyped_column` every value of a required int or timestamp column is of another type
                   (breaking schema drift);
* `bad_row`        a row with the wrong number of columns, an empty required field, a number that is
                   not an integer (or below its minimum), a timestamp without an offset, or a value
                   outside its allowed set.

A header with every contract column in order plus new ones is **additive drift**: the file is read
by the contract's columns and returned, with one `added` event per new column in `ParsedFile.drift`
(columns the kind lists under `known_columns` were reviewed and are not drift). A column is read from
its header name, or from its `source` (a rename a new contract version accepted). Every drift
message names the column, the contract and its version.

Timestamps are ISO-8601 with an offset and come out as aware UTC datetimes.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.contracts.warehouse_files import (
    Column,
    FileKind,
    WarehouseFilesContract,
    load_warehouse_files_contract,
)
from integration_assets.streams.schema_drift import (
    ADDED,
    REMOVED,
    RENAME_NAME_SIMILARITY,
    RENAMED,
    RETYPED,
    DriftEvent,
)
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc

__all__ = [
    "FILE_KINDS",
    "RETURN_CONDITIONS",
    "Column",
    "FileKind",
    "FileRejection",
    "ParsedFile",
    "file_kinds",
    "kind_of",
    "read_warehouse_file",
    "render_csv",
    "sha256_of",
]

_INTEGER = re.compile(r"-?\d+")


def file_kinds() -> Mapping[str, FileKind]:
    """The file kinds of the warehouse file contract in force now (the override's, if any)."""
    return load_warehouse_files_contract().kinds


# The kinds as the contract said when this module was imported: what the staging tables, the
# column schemas in the UI and the sandbox are built from. Reading a file uses the contract in
# force at that moment (`read_warehouse_file`), so a new version applies without a restart.
FILE_KINDS: dict[str, FileKind] = dict(file_kinds())
RETURN_CONDITIONS = next(
    column.allowed for column in FILE_KINDS["return_receipts"].columns if column.name == "condition"
)


@dataclass(frozen=True)
class ParsedFile:
    """Every row of a good file, typed; `rows[i]["line"]` is the physical line (header = 1)."""

    name: str
    kind: str
    sha256: str
    size: int
    rows: tuple[dict[str, Any], ...]
    drift: tuple[DriftEvent, ...] = ()  # additive drift only: new header columns, read past


@dataclass(frozen=True)
class FileRejection:
    """A whole file refused: the rule it broke and a reason naming line and column where it can."""

    name: str
    kind: str | None
    sha256: str
    size: int
    rule: str  # unknown_kind, truncated, wrong_encoding, empty_file, wrong_header, bad_row
    reason: str
    line: int | None = None
    column: str | None = None
    data_lines: int = 0  # non-empty lines after the header, as far as they can be counted
    drift: tuple[DriftEvent, ...] = ()  # breaking drift behind a wrong_header / retyped_column

    @property
    def contract_can_fix(self) -> bool:
        """A rule a new contract version can lift (not broken bytes): worth reading again then."""
        return self.rule in CONTRACT_RULES


# Rejections a new contract version may lift; the others are about the bytes, not their meaning.
CONTRACT_RULES = ("unknown_kind", "wrong_header", "retyped_column", "bad_row")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kind_of(name: str, kinds: Mapping[str, FileKind] | None = None) -> str | None:
    """The file kind from its name (`stock_count_20261120.csv` -> `stock_counts`), else None."""
    base = name.rsplit("/", 1)[-1]
    if not base.lower().endswith(".csv"):
        return None
    # Longest prefix first: `return_receipts_` must not be read as something shorter.
    for kind in sorted((kinds or FILE_KINDS).values(), key=lambda k: len(k.prefix), reverse=True):
        if base.startswith(kind.prefix):
            return kind.kind
    return None


def count_data_lines(data: bytes) -> int:
    """Non-empty lines after the first one; works on any bytes (even undecodable ones)."""
    lines = [line for line in data.split(b"\n")[1:] if line.strip(b"\r \t")]
    return len(lines)


def _parse_value(column: Column, text: str, line: int) -> tuple[Any, str | None]:
    where = f"line {line}, column {column.name}"
    value = text.strip()
    if value == "":
        if column.required:
            return None, f"{where}: required but empty"
        return None, None
    if column.type == "int":
        if not _INTEGER.fullmatch(value):
            return None, f"{where}: {text!r} is not an integer"
        number = int(value)
        if column.minimum is not None and number < column.minimum:
            return None, f"{where}: {number} is below the minimum {column.minimum}"
        return number, None
    if column.type == "timestamp":
        try:
            moment: datetime = parse_utc(value)
        except TimestampFormatError:
            return None, f"{where}: {text!r} is not an ISO-8601 timestamp with a UTC offset"
        return moment, None
    if column.allowed and value not in column.allowed:
        return None, f"{where}: {text!r} is not one of {', '.join(column.allowed)}"
    return value, None


def _is_wrong_type(column: Column, text: str) -> bool:
    """A non-empty value that is not of the column's type at all (not: below minimum, not allowed)."""
    value = text.strip()
    if not value or column.type == "text":
        return False
    if column.type == "int":
        return not _INTEGER.fullmatch(value)
    try:
        parse_utc(value)
    except TimestampFormatError:
        return True
    return False


@dataclass(frozen=True)
class _HeaderVerdict:
    positions: dict[str, int]  # contract column -> index in the file's header
    problem: str | None  # why the header is refused, None when it is read
    drift: tuple[DriftEvent, ...]  # breaking (refused) or added (read past)


def _rename_candidate(column: Column, position: int | None, new: dict[int, str]) -> str | None:
    """A new header column that could be `column` under another name: the one at the place the
    column would have, else the one with the most alike name (difflib ratio)."""
    if position is not None and position in new:
        return new[position]
    scored = [
        (difflib.SequenceMatcher(None, column.name, name).ratio(), name) for name in new.values()
    ]
    best = max(scored, default=None)
    return best[1] if best and best[0] >= RENAME_NAME_SIMILARITY else None


def _judge_header(
    kind: FileKind, found: tuple[str, ...], contract: WarehouseFilesContract, data_lines: int
) -> _HeaderVerdict:
    against = f"against contract {contract.label}"
    where = f"wrong header for a {kind.kind} file {against}"
    expected = tuple(column.header_names[0] for column in kind.columns)
    positions: dict[str, int] = {}
    for column in kind.columns:
        index = next((found.index(n) for n in column.header_names if n in found), None)
        if index is not None:
            positions[column.name] = index
    read = set(positions.values())
    new = {
        index: name
        for index, name in enumerate(found)
        if index not in read and name not in kind.known_columns
    }
    missing = [column for column in kind.columns if column.name not in positions]
    unexpected = [name for index, name in enumerate(found) if index not in read]
    details = []
    if missing:
        details.append(f"missing: {', '.join(column.name for column in missing)}")
    if unexpected:
        details.append(f"unexpected: {', '.join(unexpected)}")
    if not details:
        details.append("same columns in a different order")
    shapes = (
        f"expected columns {', '.join(expected)}; found {', '.join(found) or '(none)'} "
        f"({'; '.join(details)})"
    )
    twice = sorted({name for name in found if found.count(name) > 1})
    if twice or "" in found:
        what = f"column {', '.join(repr(n) for n in twice)} twice" if twice else "an unnamed column"
        return _HeaderVerdict(positions, f"{where}: the header has {what}; {shapes}", ())
    if missing:
        problems, events = [], []
        offered: set[str] = set()
        for column in missing:
            place = kind.columns.index(column)
            candidate = _rename_candidate(
                column, place, {i: n for i, n in new.items() if n not in offered}
            )
            label = "required column" if column.required else "column"
            if candidate is not None:
                offered.add(candidate)
                text = f"{label} '{column.name}' is missing (renamed to '{candidate}'?)"
                events.append(
                    DriftEvent(RENAMED, column.name, f"{text} {against}", data_lines, data_lines)
                )
            else:
                text = f"{label} '{column.name}' is missing"
                events.append(
                    DriftEvent(REMOVED, column.name, f"{text} {against}", data_lines, data_lines)
                )
            problems.append(text)
        return _HeaderVerdict(positions, f"{where}: {'; '.join(problems)}; {shapes}", tuple(events))
    order = [positions[column.name] for column in kind.columns]
    if order != sorted(order):
        return _HeaderVerdict(positions, f"{where}: {shapes}", ())
    added = tuple(
        DriftEvent(
            ADDED,
            name,
            f"new column '{name}' in a {kind.kind} file (not in the contract) {against}; "
            "the file was read by the contract's columns",
            data_lines,
            data_lines,
        )
        for name in new.values()
    )
    return _HeaderVerdict(positions, None, added)


def read_warehouse_file(
    name: str, data: bytes, contract: WarehouseFilesContract | None = None
) -> ParsedFile | FileRejection:
    """Read one WMS file whole against `contract` (default: the one in force now): every row
    typed, or the whole file refused with its reason."""
    contract = contract or load_warehouse_files_contract()
    digest, size = sha256_of(data), len(data)
    data_lines = count_data_lines(data)

    def reject(
        kind: str | None,
        rule: str,
        reason: str,
        line: int | None = None,
        column: str | None = None,
        drift: tuple[DriftEvent, ...] = (),
    ) -> FileRejection:
        return FileRejection(
            name, kind, digest, size, rule, reason, line, column, data_lines, drift
        )

    kind_name = kind_of(name, contract.kinds)
    if kind_name is None:
        expected = ", ".join(f"{kind.prefix}*.csv" for kind in contract.kinds.values())
        return reject(
            None, "unknown_kind", f"file name {name!r} matches no known kind (expected {expected})"
        )
    kind = contract.kinds[kind_name]
    if data and not data.endswith(b"\n"):
        last_line = data.count(b"\n") + 1
        return reject(
            kind_name,
            "truncated",
            f"truncated: the last line (line {last_line}) does not end with a newline; "
            "the file was probably cut off while being written or copied",
            last_line,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return reject(
            kind_name,
            "wrong_encoding",
            f"not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} (line {line}) "
            "is not valid UTF-8; the WMS export must be UTF-8",
            line,
        )
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        return reject(
            kind_name, "wrong_header", f"line 1: the header is not valid CSV ({error})", 1
        )
    if header is None:
        return reject(kind_name, "empty_file", "empty file: no header line", 1)
    found = tuple(column.strip() for column in header)
    verdict = _judge_header(kind, found, contract, data_lines)
    if verdict.problem is not None:
        return reject(kind_name, "wrong_header", verdict.problem, 1, None, verdict.drift)
    records: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            records.append((reader.line_num, row))
    except csv.Error as error:
        return reject(
            kind_name, "bad_row", f"line {reader.line_num + 1}: not valid CSV ({error})", None
        )
    rows: list[dict[str, Any]] = []
    width = len(found)
    for position, (line, row) in enumerate(records):
        if not row or all(not cell.strip() for cell in row):
            continue  # a blank line carries nothing
        if len(row) != width:
            is_last = position == len(records) - 1
            if is_last and len(row) < width:
                return reject(
                    kind_name,
                    "truncated",
                    f"truncated: the last line (line {line}) has {len(row)} of {width} columns; "
                    "the file was probably cut off while being written or copied",
                    line,
                )
            return reject(
                kind_name,
                "bad_row",
                f"line {line}: expected {width} columns ({', '.join(found)}), found {len(row)}",
                line,
            )
        typed: dict[str, Any] = {"line": line}
        for column in kind.columns:
            cell = row[verdict.positions[column.name]]
            value, problem = _parse_value(column, cell, line)
            if problem is not None:
                retyped = _retyped(kind, column, records, verdict.positions[column.name], contract)
                if retyped is not None:
                    return reject(
                        kind_name, "retyped_column", retyped.detail, line, column.name, (retyped,)
                    )
                return reject(kind_name, "bad_row", problem, line, column.name)
            typed[column.name] = value
        rows.append(typed)
    return ParsedFile(name, kind_name, digest, size, tuple(rows), verdict.drift)


def _retyped(
    kind: FileKind,
    column: Column,
    records: list[tuple[int, list[str]]],
    index: int,
    contract: WarehouseFilesContract,
) -> DriftEvent | None:
    """Breaking drift when a required int/timestamp column holds another type in every row (at
    least two): the WMS changed what it sends there, not one bad row."""
    if not column.required or column.type == "text":
        return None
    values = [
        (line, row[index]) for line, row in records if len(row) > index and row[index].strip()
    ]
    if len(values) < 2 or not all(_is_wrong_type(column, value) for _, value in values):
        return None
    first_line, first_value = values[0]
    detail = (
        f"retyped column in a {kind.kind} file against contract {contract.label}: required column "
        f"'{column.name}' is {column.type} in the contract, but none of its {len(values)} values "
        f"is (line {first_line}: {first_value!r})"
    )
    return DriftEvent(RETYPED, column.name, detail, len(values), len(values))


def render_csv(kind: str, rows: list[dict[str, Any]] | list[list[Any]]) -> bytes:
    """The canonical bytes of a file of `kind`: header, then rows, `\\n` line ends, UTF-8."""
    columns = FILE_KINDS[kind].header
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns] if isinstance(row, dict) else list(row))
    return buffer.getvalue().encode("utf-8")
