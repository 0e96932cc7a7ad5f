"""WMS file drops: read one CSV file of a known kind, all of it or none of it. Pure, no Dagster.

The warehouse (WMS) exports CSV files into an inbox folder: shipments, receipts, stock counts,
return receipts and return authorizations (RMA). A file is the unit of trust: `read_warehouse_file` either returns every row typed
(`ParsedFile`) or refuses the whole file (`FileRejection`) with one reason an operator can act on,
naming the line and the column of the first problem. A half-read file is never returned.

Rules, in the order they are checked:

* `unknown_kind`   the name does not start with a known prefix (`shipments_`, `receipts_`, ...);
* `truncated`      the last line does not end with a newline, or it has fewer columns than the
                   header (the file was cut off while being written or copied);
* `wrong_encoding` the bytes are not UTF-8 (a leading UTF-8 byte-order mark is accepted);
* `empty_file`     no header line at all;
* `wrong_header`   the header is not exactly the kind's columns, in order;
* `bad_row`        a row with the wrong number of columns, an empty required field, a number that is
                   not an integer (or below its minimum), a timestamp without an offset, or a value
                   outside its allowed set.

Timestamps are ISO-8601 with an offset and come out as aware UTC datetimes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.streams.timestamps import TimestampFormatError, parse_utc

_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "text", "int" or "timestamp"
    required: bool = True
    minimum: int | None = None
    allowed: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class FileKind:
    kind: str  # shipments, receipts, stock_counts, return_receipts, return_authorizations
    prefix: str  # file names start with this: shipments_20261120T10.csv
    columns: tuple[Column, ...]
    description: str

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


RETURN_CONDITIONS = ("sellable", "damaged")

FILE_KINDS: dict[str, FileKind] = {
    kind.kind: kind
    for kind in (
        FileKind(
            "shipments",
            "shipments_",
            (
                Column("shipment_id", "text", description="the WMS shipment (one per parcel)"),
                Column("order_id", "int", minimum=1, description="the storefront order id"),
                Column("sku", "text"),
                Column("quantity", "int", minimum=1),
                Column("location", "text", description="the warehouse location that shipped"),
                Column("shipped_at", "timestamp"),
            ),
            "units that left a warehouse location for an order, one row per shipment line",
        ),
        FileKind(
            "receipts",
            "receipts_",
            (
                Column("receipt_id", "text"),
                Column("sku", "text"),
                Column("quantity", "int", minimum=1),
                Column("location", "text"),
                Column("received_at", "timestamp"),
                Column("reference", "text", required=False, description="purchase order or ASN"),
            ),
            "supplier deliveries put away at a location",
        ),
        FileKind(
            "stock_counts",
            "stock_count_",
            (
                Column("count_id", "text"),
                Column("sku", "text"),
                Column("location", "text"),
                Column("counted_quantity", "int", minimum=0),
                Column("counted_at", "timestamp"),
            ),
            "a physical count of every SKU at every location",
        ),
        FileKind(
            "return_receipts",
            "return_receipts_",
            (
                Column("return_id", "text"),
                Column("order_id", "int", minimum=1),
                Column("sku", "text"),
                Column("quantity", "int", minimum=1),
                Column("condition", "text", allowed=RETURN_CONDITIONS),
                Column("location", "text"),
                Column("received_at", "timestamp"),
            ),
            "returned units received back at a location (sellable ones go back to stock)",
        ),
        FileKind(
            "return_authorizations",
            "return_authorizations_",
            (
                Column("rma_id", "text", description="the return authorization (RMA)"),
                Column("order_id", "int", minimum=1, description="the storefront order id"),
                Column("sku", "text"),
                Column("quantity", "int", minimum=1),
                Column("requested_at", "timestamp"),
                Column("approved_at", "timestamp", required=False),
                Column("carrier", "text", required=False),
                Column("tracking_number", "text", required=False),
                Column(
                    "shipped_at", "timestamp", required=False, description="handed to the carrier"
                ),
            ),
            "return authorizations (RMA) as they advance: a row is re-sent when its RMA is approved "
            "or shipped back, and the newest row per rma_id wins",
        ),
    )
}


@dataclass(frozen=True)
class ParsedFile:
    """Every row of a good file, typed; `rows[i]["line"]` is the physical line (header = 1)."""

    name: str
    kind: str
    sha256: str
    size: int
    rows: tuple[dict[str, Any], ...]


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


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kind_of(name: str) -> str | None:
    """The file kind from its name (`stock_count_20261120.csv` -> `stock_counts`), else None."""
    base = name.rsplit("/", 1)[-1]
    if not base.lower().endswith(".csv"):
        return None
    # Longest prefix first: `return_receipts_` must not be read as something shorter.
    for kind in sorted(FILE_KINDS.values(), key=lambda k: len(k.prefix), reverse=True):
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


def read_warehouse_file(name: str, data: bytes) -> ParsedFile | FileRejection:
    """Read one WMS file whole: every row typed, or the whole file refused with its reason."""
    digest, size = sha256_of(data), len(data)
    data_lines = count_data_lines(data)

    def reject(
        kind: str | None, rule: str, reason: str, line: int | None = None, column: str | None = None
    ) -> FileRejection:
        return FileRejection(name, kind, digest, size, rule, reason, line, column, data_lines)

    kind_name = kind_of(name)
    if kind_name is None:
        expected = ", ".join(f"{kind.prefix}*.csv" for kind in FILE_KINDS.values())
        return reject(
            None, "unknown_kind", f"file name {name!r} matches no known kind (expected {expected})"
        )
    kind = FILE_KINDS[kind_name]
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
    if found != kind.header:
        missing = [column for column in kind.header if column not in found]
        unexpected = [column for column in found if column not in kind.header]
        details = []
        if missing:
            details.append(f"missing: {', '.join(missing)}")
        if unexpected:
            details.append(f"unexpected: {', '.join(unexpected)}")
        if not details:
            details.append("same columns in a different order")
        return reject(
            kind_name,
            "wrong_header",
            f"wrong header for a {kind_name} file: expected columns {', '.join(kind.header)}; "
            f"found {', '.join(found) or '(none)'} ({'; '.join(details)})",
            1,
        )
    records: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            records.append((reader.line_num, row))
    except csv.Error as error:
        return reject(
            kind_name, "bad_row", f"line {reader.line_num + 1}: not valid CSV ({error})", None
        )
    rows: list[dict[str, Any]] = []
    width = len(kind.columns)
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
                f"line {line}: expected {width} columns ({', '.join(kind.header)}), found {len(row)}",
                line,
            )
        typed: dict[str, Any] = {"line": line}
        for column, cell in zip(kind.columns, row, strict=True):
            value, problem = _parse_value(column, cell, line)
            if problem is not None:
                return reject(kind_name, "bad_row", problem, line, column.name)
            typed[column.name] = value
        rows.append(typed)
    return ParsedFile(name, kind_name, digest, size, tuple(rows))


def render_csv(kind: str, rows: list[dict[str, Any]] | list[list[Any]]) -> bytes:
    """The canonical bytes of a file of `kind`: header, then rows, `\\n` line ends, UTF-8."""
    columns = FILE_KINDS[kind].header
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns] if isinstance(row, dict) else list(row))
    return buffer.getvalue().encode("utf-8")
