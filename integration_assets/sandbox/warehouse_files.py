"""The sandbox WMS: which CSV files sit in the warehouse inbox at scenario time T. Pure and deterministic.

A scenario's `warehouse:` section (docs/scenario-format.md, "Warehouse file drops") says where stock
is, what arrives from suppliers, when stock is counted and which files go wrong. Together with the
storefront's stories (what was fulfilled and what came back) that fixes, byte for byte, every file
the WMS drops and when:

* `shipments_<YYYYMMDDTHH>.csv`   one per `shipments.every` period (UTC) that had fulfillments,
                                  dropped at the end of the period;
* `receipts_<YYYYMMDDTHHMM>.csv`  one per receipt time, dropped at that time;
* `stock_count_<YYYYMMDD>.csv`    one per count (`stock_counts.every`, at `at_hour_utc`): counted =
                                  initial + receipts - shipments + sellable returns + discrepancies;
* `return_receipts_<YYYYMMDDTHH>.csv` one per period with returns received, dropped at its end;
* `return_authorizations_<YYYYMMDDTHH>.csv` one per period in which an RMA (`warehouse.returns`) was
                                  requested, approved or shipped back, dropped at its end;
* bad files (`bad_files`) and the same bytes again under another name (`duplicate_files`).

`files_at(scenario, T)` lists them; `sync_inbox(scenario, T, inbox)` writes the ones not there yet,
each to a temporary name first and then renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integration_assets.streams.warehouse_files import FILE_KINDS, RETURN_CONDITIONS, render_csv

if TYPE_CHECKING:
    from integration_assets.sandbox.scenario import Scenario, _Reader
    from integration_assets.sandbox.storefront_orders import OrderBook

BAD_FILE_KINDS = ("wrong_header", "wrong_encoding", "truncated", "unparseable_row")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WarehouseError(ValueError):
    """A warehouse section that cannot be played (names the path inside the scenario)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


# ---- the scenario's warehouse section -----------------------------------------------------------
@dataclass(frozen=True)
class StockLine:
    sku: str
    location: str
    quantity: int


@dataclass(frozen=True)
class ReceiptSpec:
    at: datetime
    sku: str
    quantity: int
    location: str
    reference: str


@dataclass(frozen=True)
class Discrepancy:
    at: datetime
    sku: str
    location: str
    delta: int
    cause: str  # the answer key: what really happened (not in the file; the ledger must find it)


@dataclass(frozen=True)
class StockCountSpec:
    every: timedelta
    at_hour_utc: int
    discrepancies: tuple[Discrepancy, ...] = ()
    opening: bool = False  # an opening stock take at the clock's start (go-live)


@dataclass(frozen=True)
class ReturnSpec:
    at: datetime
    order: str  # a story name
    sku: str
    quantity: int
    condition: str


@dataclass(frozen=True)
class RmaSpec:
    """One return authorization (`warehouse.returns`): RMA rows as it advances, then its receipt."""

    order: str | int  # a story name, or a storefront order id (e.g. a fixture order)
    sku: str
    quantity: int
    requested_at: datetime
    approved_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    condition: str


@dataclass(frozen=True)
class BadFileSpec:
    at: datetime
    kind: str  # wrong_header, wrong_encoding, truncated, unparseable_row
    of: str  # a file kind: shipments, receipts, stock_counts, return_receipts


@dataclass(frozen=True)
class DuplicateFileSpec:
    at: datetime
    of: str  # the name of a file dropped earlier


@dataclass(frozen=True)
class WarehouseSpec:
    locations: tuple[str, ...]
    initial_stock: tuple[StockLine, ...] = ()
    shipments_every: timedelta | None = timedelta(hours=1)
    receipts: tuple[ReceiptSpec, ...] = ()
    stock_counts: StockCountSpec | None = None
    return_delay: timedelta | None = None
    return_condition: str = "sellable"
    returns: tuple[ReturnSpec, ...] = ()
    bad_files: tuple[BadFileSpec, ...] = ()
    duplicate_files: tuple[DuplicateFileSpec, ...] = ()
    rmas: tuple[RmaSpec, ...] = ()


def parse_warehouse(
    reader: _Reader, raw: Any, skus: set[str], story_labels: set[str]
) -> WarehouseSpec | None:
    """Validate the `warehouse:` section with the scenario's reader (errors name file and path)."""
    if raw is None:
        return None
    data = reader.mapping(
        raw,
        "warehouse",
        {
            "locations",
            "initial_stock",
            "shipments",
            "receipts",
            "stock_counts",
            "return_receipts",
            "bad_files",
            "duplicate_files",
            "returns",
        },
    )
    locations = tuple(
        reader.string(value, f"warehouse.locations[{index}]")
        for index, value in enumerate(reader.listing(data.get("locations"), "warehouse.locations"))
    )
    if not locations:
        raise reader.fail("warehouse.locations", "list at least one location")
    if len(set(locations)) != len(locations):
        raise reader.fail("warehouse.locations", "locations must be unique")

    def sku(value: Any, path: str) -> str:
        text = reader.string(value, path)
        if text not in skus:
            raise reader.fail(path, f"unknown SKU {text!r} (not in catalog)")
        return text

    def location(value: Any, path: str) -> str:
        text = reader.string(value, path)
        if text not in locations:
            raise reader.fail(
                path, f"unknown location {text!r} (warehouse.locations: {', '.join(locations)})"
            )
        return text

    def entries(key: str, allowed: set[str], required: set[str]) -> list[tuple[str, dict]]:
        found = []
        for index, entry in enumerate(reader.listing(data.get(key), f"warehouse.{key}")):
            path = f"warehouse.{key}[{index}]"
            item = reader.mapping(entry, path, allowed)
            for name in sorted(required):
                if name not in item:
                    raise reader.fail(f"{path}.{name}", "required")
            found.append((path, item))
        return found

    initial = tuple(
        StockLine(
            sku(item["sku"], f"{path}.sku"),
            location(item["location"], f"{path}.location"),
            reader.integer(item["quantity"], f"{path}.quantity", 0),
        )
        for path, item in entries(
            "initial_stock", {"sku", "location", "quantity"}, {"sku", "location", "quantity"}
        )
    )
    shipments_every: timedelta | None = timedelta(hours=1)
    if "shipments" in data:
        if data["shipments"] is False:
            shipments_every = None
        else:
            shipments = reader.mapping(data["shipments"] or {}, "warehouse.shipments", {"every"})
            shipments_every = _period(reader, shipments.get("every", "1h"), "warehouse.shipments")
    receipts = tuple(
        ReceiptSpec(
            reader.time(item["at"], f"{path}.at"),
            sku(item["sku"], f"{path}.sku"),
            reader.integer(item["quantity"], f"{path}.quantity", 1),
            location(item["location"], f"{path}.location"),
            str(item.get("reference") or ""),
        )
        for path, item in entries(
            "receipts",
            {"at", "sku", "quantity", "location", "reference"},
            {"at", "sku", "quantity", "location"},
        )
    )
    counts = None
    if data.get("stock_counts") is not None:
        raw_counts = reader.mapping(
            data["stock_counts"],
            "warehouse.stock_counts",
            {"every", "at_hour_utc", "discrepancies", "opening"},
        )
        hour = reader.integer(
            raw_counts.get("at_hour_utc", 23), "warehouse.stock_counts.at_hour_utc", 0
        )
        if hour > 23:
            raise reader.fail("warehouse.stock_counts.at_hour_utc", f"must be 0..23, got {hour}")
        discrepancies = []
        for index, entry in enumerate(
            reader.listing(raw_counts.get("discrepancies"), "warehouse.stock_counts.discrepancies")
        ):
            path = f"warehouse.stock_counts.discrepancies[{index}]"
            item = reader.mapping(entry, path, {"at", "sku", "location", "delta", "cause"})
            for name in ("at", "sku", "location", "delta", "cause"):
                if name not in item:
                    raise reader.fail(f"{path}.{name}", "required")
            delta = reader.integer(item["delta"], f"{path}.delta")
            if delta == 0:
                raise reader.fail(f"{path}.delta", "a discrepancy of 0 is no discrepancy")
            discrepancies.append(
                Discrepancy(
                    reader.time(item["at"], f"{path}.at"),
                    sku(item["sku"], f"{path}.sku"),
                    location(item["location"], f"{path}.location"),
                    delta,
                    reader.string(item["cause"], f"{path}.cause"),
                )
            )
        counts = StockCountSpec(
            _period(reader, raw_counts.get("every", "1d"), "warehouse.stock_counts"),
            hour,
            tuple(discrepancies),
            bool(raw_counts.get("opening", False)),
        )
    return_delay, return_condition, returns = _parse_returns(
        reader, data.get("return_receipts"), sku, story_labels
    )
    bad_files = []
    for path, item in entries("bad_files", {"at", "kind", "of"}, {"at", "kind", "of"}):
        if item["kind"] not in BAD_FILE_KINDS:
            raise reader.fail(
                f"{path}.kind",
                f"unknown bad file kind {item['kind']!r} (one of {', '.join(BAD_FILE_KINDS)})",
            )
        if item["of"] not in FILE_KINDS:
            raise reader.fail(
                f"{path}.of", f"unknown file kind {item['of']!r} (one of {', '.join(FILE_KINDS)})"
            )
        bad_files.append(
            BadFileSpec(reader.time(item["at"], f"{path}.at"), item["kind"], item["of"])
        )
    duplicates = tuple(
        DuplicateFileSpec(
            reader.time(item["at"], f"{path}.at"), reader.string(item["of"], f"{path}.of")
        )
        for path, item in entries("duplicate_files", {"at", "of"}, {"at", "of"})
    )
    rmas = _parse_rmas(reader, data.get("returns"), sku, story_labels)
    return WarehouseSpec(
        rmas=rmas,
        locations=locations,
        initial_stock=initial,
        shipments_every=shipments_every,
        receipts=receipts,
        stock_counts=counts,
        return_delay=return_delay,
        return_condition=return_condition,
        returns=returns,
        bad_files=tuple(bad_files),
        duplicate_files=duplicates,
    )


def _period(reader: _Reader, value: Any, path: str) -> timedelta:
    every = reader.duration(value, f"{path}.every")
    if every < timedelta(minutes=1) or every.total_seconds() % 60:
        raise reader.fail(f"{path}.every", f"must be whole minutes, at least 1m, got {value!r}")
    return every


def _parse_rmas(reader: _Reader, raw: Any, sku: Any, story_labels: set[str]) -> tuple[RmaSpec, ...]:
    """`warehouse.returns`: each RMA's stage times, in order (each may be null: not reached)."""
    found = []
    stages = ("requested_at", "approved_at", "shipped_at", "received_at")
    for index, entry in enumerate(reader.listing(raw, "warehouse.returns")):
        path = f"warehouse.returns[{index}]"
        item = reader.mapping(entry, path, {"order", "sku", "quantity", "condition", *stages})
        for name in ("order", "sku", "requested_at"):
            if item.get(name) is None:
                raise reader.fail(f"{path}.{name}", "required")
        order: str | int
        if isinstance(item["order"], int) and not isinstance(item["order"], bool):
            order = reader.integer(item["order"], f"{path}.order", 1)
        else:
            order = reader.string(item["order"], f"{path}.order")
            if order not in story_labels:
                raise reader.fail(f"{path}.order", f"no story is named {order!r}")
        condition = item.get("condition", "sellable")
        if condition not in RETURN_CONDITIONS:
            raise reader.fail(
                f"{path}.condition",
                f"expected one of {', '.join(RETURN_CONDITIONS)}, got {condition!r}",
            )
        times: list[datetime | None] = [
            None if item.get(name) is None else reader.time(item[name], f"{path}.{name}")
            for name in stages
        ]
        reached = [(name, at) for name, at in zip(stages, times, strict=True) if at is not None]
        for (_, earlier), (name, later) in zip(reached, reached[1:], strict=False):
            if later < earlier:
                raise reader.fail(f"{path}.{name}", "must not be before the stage before it")
        for position, name in enumerate(stages[1:], start=1):
            if (
                times[position] is not None
                and times[position - 1] is None
                and name != "received_at"
            ):
                raise reader.fail(f"{path}.{name}", f"set but {stages[position - 1]} is null")
        found.append(
            RmaSpec(
                order,
                sku(item["sku"], f"{path}.sku"),
                reader.integer(item.get("quantity", 1), f"{path}.quantity", 1),
                times[0],  # type: ignore[arg-type]
                times[1],
                times[2],
                times[3],
                condition,
            )
        )
    return tuple(found)


def _parse_returns(
    reader: _Reader, raw: Any, sku: Any, story_labels: set[str]
) -> tuple[timedelta | None, str, tuple[ReturnSpec, ...]]:
    path = "warehouse.return_receipts"
    if raw is None:
        return None, "sellable", ()
    explicit_raw: Any = raw
    delay = None
    condition = "sellable"
    if isinstance(raw, dict):
        data = reader.mapping(raw, path, {"return_delay", "condition", "explicit"})
        if "return_delay" in data:
            delay = reader.duration(data["return_delay"], f"{path}.return_delay")
            if delay < timedelta(0):
                raise reader.fail(f"{path}.return_delay", "must not be negative")
        condition = data.get("condition", "sellable")
        if condition not in RETURN_CONDITIONS:
            raise reader.fail(
                f"{path}.condition",
                f"expected one of {', '.join(RETURN_CONDITIONS)}, got {condition!r}",
            )
        explicit_raw = data.get("explicit")
        path = f"{path}.explicit"
    returns = []
    for index, entry in enumerate(reader.listing(explicit_raw, path)):
        item_path = f"{path}[{index}]"
        item = reader.mapping(entry, item_path, {"at", "order", "sku", "quantity", "condition"})
        for name in ("at", "order", "sku"):
            if name not in item:
                raise reader.fail(f"{item_path}.{name}", "required")
        order = reader.string(item["order"], f"{item_path}.order")
        if order not in story_labels:
            raise reader.fail(f"{item_path}.order", f"no story is named {order!r}")
        item_condition = item.get("condition", "sellable")
        if item_condition not in RETURN_CONDITIONS:
            raise reader.fail(
                f"{item_path}.condition",
                f"expected one of {', '.join(RETURN_CONDITIONS)}, got {item_condition!r}",
            )
        returns.append(
            ReturnSpec(
                reader.time(item["at"], f"{item_path}.at"),
                order,
                sku(item["sku"], f"{item_path}.sku"),
                reader.integer(item.get("quantity", 1), f"{item_path}.quantity", 1),
                item_condition,
            )
        )
    return delay, condition, tuple(returns)


# ---- the files ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InboxFile:
    """One file the WMS drops: when, under which name, exactly which bytes."""

    at: datetime
    name: str
    data: bytes
    kind: str  # the file kind (shipments, ...)
    note: str = "good"  # good | bad:<defect> | duplicate of <name>


def _stamp_hour(moment: datetime, every: timedelta) -> str:
    fmt = "%Y%m%dT%H" if every.total_seconds() % 3600 == 0 else "%Y%m%dT%H%M"
    return moment.astimezone(UTC).strftime(fmt)


def _floor(moment: datetime, every: timedelta) -> datetime:
    seconds = int((moment - EPOCH).total_seconds())
    step = int(every.total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % step)


def _iso(moment: datetime, tz: Any) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _pick_location(
    locations: tuple[str, ...], stock: dict[tuple[str, str], int], sku: str, units: int, order: int
) -> str:
    """Orders alternate between locations (by order id); one without the units defers to the fullest."""
    preferred = locations[(order // 1000) % len(locations)]
    if stock.get((sku, preferred), 0) >= units:
        return preferred
    return max(locations, key=lambda loc: (stock.get((sku, loc), 0), -locations.index(loc)))


@dataclass
class _Movement:
    at: datetime
    order: int  # tie-break: receipts, discrepancies, shipments, returns at the same second
    kind: str
    payload: dict[str, Any]


class WarehousePlan:
    """Every file a scenario's WMS drops, computed once; counts are generated up to any time."""

    def __init__(self, scenario: Scenario, book: OrderBook | None = None) -> None:
        from integration_assets.sandbox.storefront_orders import OrderBook

        spec = scenario.warehouse
        self.scenario = scenario
        self.spec = spec
        self._files: list[InboxFile] = []
        self._counts: dict[datetime, InboxFile] = {}
        self._stock_timeline: list[tuple[datetime, dict[tuple[str, str], int]]] = []
        self._rma_rows: list[tuple[datetime, dict[str, Any]]] = []
        self._lock = threading.Lock()
        if spec is None:
            return
        self.tz = scenario.shop.tz
        book = book or OrderBook(scenario)
        self._simulate(book)
        self._add_bad_files()
        self._add_duplicates()
        self._files.sort(key=lambda f: (f.at, f.name))

    # ---- the simulation: stock moves in time order, shipments pick the fullest location ------
    def _story_orders(self, book: OrderBook) -> Iterator[tuple[int, dict[str, Any]]]:
        """Each story order's last version, decoded one at a time (not every body at once)."""
        fixture_ids: set[int] = set()
        for ref in self.scenario.fixture_orders:
            try:
                document = json.loads(ref.file.read_text())
            except (OSError, ValueError):
                continue
            orders = document.get("orders") or [document.get("order")]
            fixture_ids |= {o["id"] for o in orders if isinstance(o, dict) and "id" in o}
        for order_id in book.order_ids():
            if order_id in fixture_ids:
                continue
            timeline = book._timelines[order_id]  # the order's last version holds its whole history
            yield order_id, timeline.versions[-1].body

    @staticmethod
    def _rma_order(book: OrderBook, rma: RmaSpec) -> int:
        return rma.order if isinstance(rma.order, int) else book.ids_by_label[rma.order]

    def _simulate(self, book: OrderBook) -> None:
        spec = self.spec
        assert spec is not None
        moves: list[_Movement] = []
        for receipt in spec.receipts:
            moves.append(_Movement(receipt.at, 0, "receipt", {"spec": receipt}))
        if spec.stock_counts:
            for discrepancy in spec.stock_counts.discrepancies:
                moves.append(_Movement(discrepancy.at, 1, "discrepancy", {"spec": discrepancy}))
        rma_received = {
            (self._rma_order(book, rma), rma.sku) for rma in spec.rmas if rma.received_at
        }
        for order_id, body in self._story_orders(book):
            skus_by_line = {
                line.get("id"): line.get("sku") for line in body.get("line_items") or []
            }
            if spec.shipments_every is not None:
                for fulfillment in body.get("fulfillments") or []:
                    moves.append(
                        _Movement(
                            _parse_time(fulfillment["created_at"]),
                            2,
                            "shipment",
                            {"order_id": order_id, "fulfillment": fulfillment},
                        )
                    )
            if spec.return_delay is not None:
                for refund in body.get("refunds") or []:
                    lines = [
                        (item["id"], skus_by_line.get(item["line_item_id"]), item["quantity"])
                        for item in refund.get("refund_line_items") or []
                        if item.get("restock_type") == "return"
                    ]
                    for line_id, sku, quantity in lines:
                        if sku and (order_id, sku) not in rma_received:
                            moves.append(
                                _Movement(
                                    _parse_time(refund["created_at"]) + spec.return_delay,
                                    3,
                                    "return",
                                    {
                                        "return_id": f"RET-{line_id}",
                                        "order_id": order_id,
                                        "sku": sku,
                                        "quantity": quantity,
                                        "condition": spec.return_condition,
                                    },
                                )
                            )
        for index, explicit in enumerate(spec.returns):
            order_id = book.ids_by_label[explicit.order]
            moves.append(
                _Movement(
                    explicit.at,
                    3,
                    "return",
                    {
                        "return_id": f"RET-{order_id}-{index + 1}",
                        "order_id": order_id,
                        "sku": explicit.sku,
                        "quantity": explicit.quantity,
                        "condition": explicit.condition,
                    },
                )
            )
        for index, rma in enumerate(spec.rmas):
            order_id = self._rma_order(book, rma)
            rma_id = f"RMA-{order_id}-{index + 1}"
            row = {
                "rma_id": rma_id,
                "order_id": order_id,
                "sku": rma.sku,
                "quantity": rma.quantity,
                "requested_at": _iso(rma.requested_at, self.tz),
                "approved_at": "",
                "carrier": "",
                "tracking_number": "",
                "shipped_at": "",
            }
            self._rma_rows.append((rma.requested_at, dict(row)))
            if rma.approved_at:
                row["approved_at"] = _iso(rma.approved_at, self.tz)
                self._rma_rows.append((rma.approved_at, dict(row)))
            if rma.shipped_at:
                row["carrier"] = "UPS"
                row["tracking_number"] = f"1ZRMA{order_id % 10**8:08d}{index + 1:02d}"
                row["shipped_at"] = _iso(rma.shipped_at, self.tz)
                self._rma_rows.append((rma.shipped_at, dict(row)))
            if rma.received_at:
                moves.append(
                    _Movement(
                        rma.received_at,
                        3,
                        "return",
                        {
                            "return_id": rma_id,
                            "order_id": order_id,
                            "sku": rma.sku,
                            "quantity": rma.quantity,
                            "condition": rma.condition,
                        },
                    )
                )
        moves.sort(key=lambda m: (m.at, m.order))

        stock: dict[tuple[str, str], int] = defaultdict(int)
        for line in spec.initial_stock:
            stock[(line.sku, line.location)] += line.quantity
        shipped_from: dict[tuple[int, str], str] = {}
        shipments: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        receipts: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        returns: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        self._stock_timeline.append((datetime.min.replace(tzinfo=UTC), dict(stock)))
        return_period = spec.shipments_every or timedelta(hours=1)
        for move in moves:
            if move.kind == "receipt":
                receipt: ReceiptSpec = move.payload["spec"]
                stock[(receipt.sku, receipt.location)] += receipt.quantity
                rows = receipts[receipt.at]
                rows.append(
                    {
                        "receipt_id": f"RCV-{receipt.at.strftime('%Y%m%d%H%M')}-{len(rows) + 1}",
                        "sku": receipt.sku,
                        "quantity": receipt.quantity,
                        "location": receipt.location,
                        "received_at": _iso(receipt.at, self.tz),
                        "reference": receipt.reference,
                    }
                )
            elif move.kind == "discrepancy":
                discrepancy: Discrepancy = move.payload["spec"]
                stock[(discrepancy.sku, discrepancy.location)] += discrepancy.delta
            elif move.kind == "shipment":
                fulfillment = move.payload["fulfillment"]
                order_id = move.payload["order_id"]
                period = _floor(move.at, spec.shipments_every)  # type: ignore[arg-type]
                for line in fulfillment.get("line_items") or []:
                    sku = str(line.get("sku"))
                    where = _pick_location(
                        spec.locations, stock, sku, int(line["quantity"]), order_id
                    )
                    stock[(sku, where)] -= int(line["quantity"])
                    shipped_from[(order_id, sku)] = where
                    shipments[period].append(
                        {
                            "shipment_id": f"SHP-{fulfillment['id']}",
                            "order_id": order_id,
                            "sku": sku,
                            "quantity": int(line["quantity"]),
                            "location": where,
                            "shipped_at": _iso(move.at, self.tz),
                        }
                    )
            else:
                row = move.payload
                where = shipped_from.get((row["order_id"], row["sku"]), spec.locations[0])
                if row["condition"] == "sellable":
                    stock[(row["sku"], where)] += row["quantity"]
                returns[_floor(move.at, return_period)].append(
                    {**row, "location": where, "received_at": _iso(move.at, self.tz)}
                )
            self._stock_timeline.append((move.at, dict(stock)))

        for period, rows in shipments.items():
            every = spec.shipments_every
            assert every is not None
            self._files.append(
                InboxFile(
                    period + every,
                    f"shipments_{_stamp_hour(period, every)}.csv",
                    render_csv("shipments", rows),
                    "shipments",
                )
            )
        for at, rows in receipts.items():
            self._files.append(
                InboxFile(
                    at,
                    f"receipts_{at.astimezone(UTC).strftime('%Y%m%dT%H%M')}.csv",
                    render_csv("receipts", rows),
                    "receipts",
                )
            )
        # Return authorizations: one file per period with RMA changes, the newest row per RMA in it.
        by_period: dict[datetime, dict[str, dict[str, Any]]] = defaultdict(dict)
        for at, rma_row in sorted(self._rma_rows, key=lambda item: item[0]):
            by_period[_floor(at, return_period)][rma_row["rma_id"]] = rma_row
        for period, latest in by_period.items():
            self._files.append(
                InboxFile(
                    period + return_period,
                    f"return_authorizations_{_stamp_hour(period, return_period)}.csv",
                    render_csv("return_authorizations", list(latest.values())),
                    "return_authorizations",
                )
            )
        for period, rows in returns.items():
            self._files.append(
                InboxFile(
                    period + return_period,
                    f"return_receipts_{_stamp_hour(period, return_period)}.csv",
                    render_csv("return_receipts", rows),
                    "return_receipts",
                )
            )

    # ---- stock counts, generated up to any time -------------------------------------------
    def count_times(self, until: datetime) -> list[datetime]:
        counts = self.spec.stock_counts if self.spec else None
        if counts is None:
            return []
        start = self.scenario.clock.start.astimezone(UTC)
        first = start.replace(hour=counts.at_hour_utc, minute=0, second=0, microsecond=0)
        while first < start:
            first += counts.every
        # An opening stock take at go-live (the clock's start), so the ledger starts from what is on the shelves.
        times = [start] if counts.opening and first != start and start <= until else []
        moment = first
        while moment <= until:
            times.append(moment)
            moment += counts.every
        return times

    def _stock_at(self, moment: datetime) -> dict[tuple[str, str], int]:
        stock: dict[tuple[str, str], int] = {}
        for at, snapshot in self._stock_timeline:
            if at > moment:
                break
            stock = snapshot
        return stock

    def count_file(self, moment: datetime) -> InboxFile:
        with self._lock:
            cached = self._counts.get(moment)
        if cached is not None:
            return cached
        counts = self.spec.stock_counts if self.spec else None
        assert counts is not None
        stock = self._stock_at(moment)
        keys = sorted(stock, key=lambda key: (key[1], key[0]))
        daily = counts.every.total_seconds() % 86400 == 0 and (moment.hour, moment.minute) == (
            counts.at_hour_utc,
            0,
        )
        stamp = moment.strftime("%Y%m%d" if daily else "%Y%m%dT%H%M")
        rows = [
            {
                "count_id": f"CNT-{stamp}-{index + 1:03d}",
                "sku": sku,
                "location": location,
                # A shelf cannot hold fewer than 0 units: an oversold SKU is counted as 0.
                "counted_quantity": max(0, stock[(sku, location)]),
                "counted_at": moment.astimezone(UTC).isoformat(timespec="seconds"),
            }
            for index, (sku, location) in enumerate(keys)
        ]
        made = InboxFile(
            moment, f"stock_count_{stamp}.csv", render_csv("stock_counts", rows), "stock_counts"
        )
        with self._lock:
            self._counts[moment] = made
        return made

    def expected_stock(self, moment: datetime) -> dict[tuple[str, str], int]:
        """What the WMS believes is on the shelf at `moment` (sku, location) -> units (may be < 0)."""
        return dict(self._stock_at(moment))

    # ---- bad and duplicate files ---------------------------------------------------------
    def _sample_rows(self, kind: str, at: datetime) -> list[dict[str, Any]]:
        spec = self.spec
        assert spec is not None
        skus = [item.sku for item in self.scenario.catalog][:3] or ["SKU-1"]
        stamp = at.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        rows = []
        for index, sku in enumerate(skus):
            location = spec.locations[index % len(spec.locations)]
            when = _iso(at, self.tz)
            rows.append(
                {
                    "shipments": {
                        "shipment_id": f"SHP-{stamp}-{index + 1}",
                        "order_id": 5100000000 + index + 1,
                        "sku": sku,
                        "quantity": index + 1,
                        "location": location,
                        "shipped_at": when,
                    },
                    "receipts": {
                        "receipt_id": f"RCV-{stamp}-{index + 1}",
                        "sku": sku,
                        "quantity": 10 * (index + 1),
                        "location": location,
                        "received_at": when,
                        "reference": f"PO-{stamp}",
                    },
                    "stock_counts": {
                        "count_id": f"CNT-{stamp}-{index + 1:03d}",
                        "sku": sku,
                        "location": location,
                        "counted_quantity": 5 * (index + 1),
                        "counted_at": when,
                    },
                    "return_authorizations": {
                        "rma_id": f"RMA-{stamp}-{index + 1}",
                        "order_id": 5100000000 + index + 1,
                        "sku": sku,
                        "quantity": 1,
                        "requested_at": when,
                        "approved_at": when,
                        "carrier": "UPS",
                        "tracking_number": f"1ZRMA{stamp}{index + 1}",
                        "shipped_at": "",
                    },
                    "return_receipts": {
                        "return_id": f"RET-{stamp}-{index + 1}",
                        "order_id": 5100000000 + index + 1,
                        "sku": sku,
                        "quantity": 1,
                        "condition": "sellable",
                        "location": location,
                        "received_at": when,
                    },
                }[kind]
            )
        return rows

    def _add_bad_files(self) -> None:
        assert self.spec is not None
        for bad in self.spec.bad_files:
            kind = FILE_KINDS[bad.of]
            rows = self._sample_rows(bad.of, bad.at)
            good = render_csv(bad.of, rows)
            if bad.kind == "wrong_header":
                renamed = {"quantity": "qty", "counted_quantity": "qty_counted"}
                header = [renamed.get(column, column) for column in kind.header]
                data = (",".join(header) + "\n").encode() + good.split(b"\n", 1)[1]
            elif bad.kind == "wrong_encoding":
                # A Windows export: cp1252 instead of UTF-8 ("Lager Süd" has a byte 0xfc).
                rows[-1]["location" if "location" in kind.header else "carrier"] = "Lager Süd"
                data = render_csv(bad.of, rows).decode("utf-8").encode("cp1252")
            elif bad.kind == "truncated":
                data = good[: len(good) - 1 - len(good.rstrip(b"\n").rsplit(b"\n", 1)[1]) // 2]
            else:
                column = "counted_quantity" if bad.of == "stock_counts" else "quantity"
                rows[1][column] = "x"
                data = render_csv(bad.of, rows)
            stamp = bad.at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
            self._files.append(
                InboxFile(
                    bad.at,
                    self._unique(f"{kind.prefix}{stamp}.csv"),
                    data,
                    bad.of,
                    f"bad:{bad.kind}",
                )
            )

    def _unique(self, name: str) -> str:
        taken = {f.name for f in self._files}
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = name.replace(".csv", f"_{n}.csv")
        return candidate

    def _add_duplicates(self) -> None:
        assert self.spec is not None
        for index, duplicate in enumerate(self.spec.duplicate_files):
            path = f"warehouse.duplicate_files[{index}].of"
            original = next((f for f in self._files if f.name == duplicate.of), None)
            if original is None:
                original = next(
                    (
                        self.count_file(t)
                        for t in self.count_times(duplicate.at)
                        if self.count_file(t).name == duplicate.of
                    ),
                    None,
                )
            if original is None:
                raise WarehouseError(
                    path, f"no file named {duplicate.of!r} is dropped (see the scenario's files)"
                )
            if original.at > duplicate.at:
                raise WarehouseError(
                    path,
                    f"{duplicate.of!r} is only dropped at {original.at.isoformat()}, "
                    f"after this duplicate ({duplicate.at.isoformat()})",
                )
            self._files.append(
                InboxFile(
                    duplicate.at,
                    self._unique(duplicate.of.replace(".csv", "_resent.csv")),
                    original.data,
                    original.kind,
                    f"duplicate of {original.name}",
                )
            )

    # ---- queries --------------------------------------------------------------------------
    def files_at(self, moment: datetime) -> list[InboxFile]:
        """Every file in the inbox at `moment`, by drop time then name."""
        if self.spec is None:
            return []
        moment = moment.astimezone(UTC)
        found = [f for f in self._files if f.at <= moment]
        found += [self.count_file(t) for t in self.count_times(moment)]
        return sorted(found, key=lambda f: (f.at, f.name))


_PLANS: dict[int, tuple[Any, WarehousePlan]] = {}
_PLANS_LOCK = threading.Lock()


def warehouse_plan(scenario: Scenario, book: OrderBook | None = None) -> WarehousePlan:
    """The scenario's plan, built once per Scenario object (its stories are replayed once)."""
    with _PLANS_LOCK:
        cached = _PLANS.get(id(scenario))
        if cached is not None and cached[0] is scenario:
            return cached[1]
    plan = WarehousePlan(scenario, book)
    with _PLANS_LOCK:
        _PLANS[id(scenario)] = (scenario, plan)
        while len(_PLANS) > 16:
            _PLANS.pop(next(iter(_PLANS)))
    return plan


def files_at(scenario: Scenario, moment: datetime) -> list[tuple[str, bytes]]:
    """(name, bytes) of every file in the warehouse inbox at scenario time `moment`."""
    return [(f.name, f.data) for f in warehouse_plan(scenario).files_at(moment)]


def sync_inbox(scenario: Scenario, moment: datetime, inbox: Path) -> list[Path]:
    """Write the files due by `moment` that are not in `inbox` yet; returns the paths written.

    Each file is written to a hidden temporary name, fsynced, given its drop time as mtime and
    renamed into place, so a reader listing the inbox never sees half a file.
    """
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    present = set(os.listdir(inbox))
    written = []
    for item in warehouse_plan(scenario).files_at(moment):
        if item.name in present:
            continue
        written.append(write_atomically(inbox, item.name, item.data, item.at))
        present.add(item.name)
    return written


def write_atomically(inbox: Path, name: str, data: bytes, at: datetime | None = None) -> Path:
    """Write `data` to `inbox/name` via a hidden temporary file and a rename."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid file name {name!r}: a plain name, not hidden, without folders")
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    temporary = inbox / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if at is not None:
        stamp = at.timestamp()
        os.utime(temporary, (stamp, stamp))
    final = inbox / name
    os.replace(temporary, final)
    return final


class WarehouseInbox:
    """The sandbox WMS writing into one inbox folder, driven by the shared scenario clock.

    `wrap(app)` returns a WSGI app that writes the files due by the clock on every request (after
    `POST /_sandbox/clock` too, so a test that moves the clock finds the files at once) and answers
    `POST /_sandbox/warehouse/drop` `{"name": ..., "content": ...}` (drops any file, e.g. a bad one)
    and `GET /_sandbox/warehouse` (what the inbox holds). With a running clock (`speed > 0`) a
    background thread also syncs once a second, so files appear without any request.
    """

    def __init__(self, scenario: Scenario, clock: Any, inbox: Path) -> None:
        self.scenario = scenario
        self.clock = clock
        self.inbox = Path(inbox)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.inbox.mkdir(parents=True, exist_ok=True)
        warehouse_plan(scenario)  # build the plan now, not inside the first request
        self.sync()
        if getattr(clock, "speed", 0):
            self._ticker = threading.Thread(
                target=self._tick, name="sandbox-wms-inbox", daemon=True
            )
            self._ticker.start()

    def sync(self) -> list[Path]:
        with self._lock:
            return sync_inbox(self.scenario, self.clock.now(), self.inbox)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.sync()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)

    def drop(self, name: str, content: str | bytes) -> Path:
        data = content.encode("utf-8") if isinstance(content, str) else content
        with self._lock:
            return write_atomically(self.inbox, name, data, self.clock.now())

    def wrap(self, app: Any) -> Any:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
            if path == "/_sandbox/warehouse/drop":
                return self._control_drop(environ, start_response, method)
            if path == "/_sandbox/warehouse" and method == "GET":
                self.sync()
                listing = sorted(p.name for p in self.inbox.iterdir() if not p.name.startswith("."))
                return _json(start_response, 200, {"inbox": str(self.inbox), "files": listing})
            self.sync()  # the clock is read by this request: what is due is in the inbox
            response = app(environ, start_response)
            if path == "/_sandbox/clock" and method == "POST":
                self.sync()  # the clock moved
            return response

        return wsgi

    def _control_drop(self, environ: dict[str, Any], start_response: Any, method: str) -> Any:
        if method != "POST":
            return _json(start_response, 405, {"errors": "Method Not Allowed"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
        except ValueError:
            return _json(start_response, 400, {"errors": 'send JSON {"name": ..., "content": ...}'})
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("name"), str)
            or not isinstance(payload.get("content"), str)
        ):
            return _json(start_response, 400, {"errors": 'send JSON {"name": ..., "content": ...}'})
        content: str | bytes = payload["content"]
        if payload.get("encoding") == "base64":  # arbitrary bytes (a wrong encoding, say)
            import base64

            content = base64.b64decode(payload["content"])
        try:
            written = self.drop(payload["name"], content)
        except ValueError as error:
            return _json(start_response, 400, {"errors": str(error)})
        return _json(start_response, 201, {"written": str(written), "size": written.stat().st_size})


def _json(start_response: Any, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    phrases = {200: "OK", 201: "Created", 400: "Bad Request", 405: "Method Not Allowed"}
    start_response(
        f"{status} {phrases[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
