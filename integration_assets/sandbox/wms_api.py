"""The warehouse's reservations REST API as a WSGI app (the WMS's small write API beside its file drops).

`X-Api-Key` auth; `PUT /api/v1/reservations/{id}` upserts a reservation (201 created, 200 updated
with version + 1, 200 with the same version when the body equals what is stored, so a retried
delivery never makes a second document); `GET /api/v1/reservations/{id}` and `GET
/api/v1/reservations`. `POST /api/v1/reservations/batch` upserts up to 100 reservations in one
request (the envelope in `bulk_writes.py`, the reservation id as each entry's `external_id`), each
answered as its own PUT would have been; one API request for the faults. Stock is a figure per SKU from the config: what a reservation cannot get is
`backordered`, which is an answer, not an error; an unknown SKU is a 400. `/_sandbox/wms/stats`
(requests, faults, reservations and versions written) needs no key.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.bulk_writes import (
    MALFORMED,
    EnvelopeProblem,
    bulk_answer,
    bulk_entries,
    json_or_none,
)
from integration_assets.sandbox.clock import ScenarioClock
from integration_assets.sandbox.request_faults import answering_fault, parse_request_faults
from integration_assets.sandbox.routing import answer_routed
from integration_assets.sandbox.scenario import Fault, _Reader
from integration_assets.sandbox.served_app import ServedApp, serve, standalone_clock
from integration_assets.sandbox.storefront_app import RequestStats, json_response

API_ENDPOINTS = {"reservation_put", "reservations_batch", "reservation_get", "reservations"}
RESERVATION_STATUSES = ("reserved", "released")
RESERVATION_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,100}")
WMS_FAULT_KINDS = {
    "server_error": ({"after_requests"}, {"count", "status"}),
    "rate_limit_burst": ({"after_requests"}, {"count", "retry_after"}),
    "slow_response": ({"after_requests", "delay_seconds"}, {"count"}),
}
DEFAULT_RETRY_AFTER = 1.0

URL_MAP = Map(
    [
        Rule("/api/v1/reservations/<reservation_id>", endpoint="reservation_put", methods=["PUT"]),
        Rule("/api/v1/reservations/<reservation_id>", endpoint="reservation_get", methods=["GET"]),
        Rule("/api/v1/reservations", endpoint="reservations", methods=["GET"]),
        Rule("/api/v1/reservations/batch", endpoint="reservations_batch", methods=["POST"]),
        Rule("/_sandbox/wms/stats", endpoint="stats", methods=["GET"]),
    ]
)


@dataclass(frozen=True)
class WmsApiConfig:
    """The reservations API: its key, the stock it reserves against, the SKUs it knows, its faults."""

    api_key: str = "wms_sandbox_key_not_a_secret"
    stock: dict[str, int] = field(default_factory=dict)  # on hand per SKU
    skus: frozenset[str] = frozenset()  # known SKUs with no stock figure (treated as 0 on hand)
    faults: tuple[Fault, ...] = ()

    @property
    def known_skus(self) -> frozenset[str]:
        return frozenset(self.stock) | self.skus


def parse_wms_api(reader: _Reader, raw: Any, path: str = "wms_api") -> WmsApiConfig:
    """The `wms_api:` section: `api_key`, `stock` {sku: quantity}, `skus` [...], `faults` [...]."""
    data = reader.mapping(raw or {}, path, {"api_key", "stock", "skus", "faults"})
    defaults = WmsApiConfig()
    stock_raw = reader.mapping(data.get("stock") or {}, f"{path}.stock")
    stock = {
        reader.string(sku, f"{path}.stock"): reader.integer(quantity, f"{path}.stock.{sku}", 0)
        for sku, quantity in stock_raw.items()
    }
    skus = frozenset(
        reader.string(sku, f"{path}.skus[{index}]")
        for index, sku in enumerate(reader.listing(data.get("skus"), f"{path}.skus"))
    )
    return WmsApiConfig(
        api_key=reader.string(data.get("api_key", defaults.api_key), f"{path}.api_key"),
        stock=stock,
        skus=skus,
        faults=parse_request_faults(reader, data.get("faults"), f"{path}.faults", WMS_FAULT_KINDS),
    )


class ReservationInvalid(Exception):
    """A body the WMS refuses; `fields` are `{"field", "message"}` entries, as the API answers them."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{entry['field']}: {entry['message']}" for entry in fields))
        self.fields = fields


class ReservationConflict(Exception):
    """A PUT that would move a reservation to another order: a different reservation, not an edit."""


def validate_reservation(body: Any, known_skus: frozenset[str]) -> dict[str, Any]:
    """The body reduced to `{order_id, status, lines}`, or ReservationInvalid listing every problem."""
    if not isinstance(body, dict):
        raise ReservationInvalid([{"field": "body", "message": "expected a JSON object"}])
    problems: list[dict[str, str]] = []
    unknown = sorted(set(body) - {"order_id", "status", "lines"})
    problems += [{"field": key, "message": "unknown field"} for key in unknown]
    order_id = body.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        problems.append({"field": "order_id", "message": "required, a non-empty string"})
    status = body.get("status")
    if status not in RESERVATION_STATUSES:
        problems.append(
            {"field": "status", "message": f"must be one of {', '.join(RESERVATION_STATUSES)}"}
        )
    lines = body.get("lines")
    normalized_lines: list[dict[str, Any]] = []
    if not isinstance(lines, list):
        problems.append({"field": "lines", "message": "required, a list of {sku, quantity}"})
        lines = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        where = f"lines[{index}]"
        if not isinstance(line, dict) or set(line) != {"sku", "quantity"}:
            problems.append({"field": where, "message": "expected exactly {sku, quantity}"})
            continue
        sku, quantity = line["sku"], line["quantity"]
        if not isinstance(sku, str) or sku not in known_skus:
            problems.append({"field": f"{where}.sku", "message": f"unknown sku {sku}"})
        elif sku in seen:
            problems.append({"field": f"{where}.sku", "message": f"sku {sku} appears twice"})
        else:
            seen.add(sku)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            problems.append({"field": f"{where}.quantity", "message": "must be an integer >= 0"})
        normalized_lines.append({"sku": sku, "quantity": quantity})
    if problems:
        raise ReservationInvalid(problems)
    return {"order_id": order_id, "status": status, "lines": normalized_lines}


@dataclass
class StoredReservation:
    reservation_id: str
    version: int
    order_id: str
    status: str
    lines: list[dict[str, Any]]
    backordered: list[dict[str, Any]]
    updated_at: datetime

    def request_body(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "lines": self.lines}

    def answer(self) -> dict[str, Any]:
        return {
            "reservation_id": self.reservation_id,
            "version": self.version,
            "order_id": self.order_id,
            "status": self.status,
            "lines": [dict(line) for line in self.lines],
            "backordered": [dict(line) for line in self.backordered],
            "updated_at": self.updated_at.isoformat(timespec="seconds"),
        }


class ReservationBook:
    """Every reservation and the stock they hold; thread-safe (the server answers in threads)."""

    def __init__(self, config: WmsApiConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._reservations: dict[str, StoredReservation] = {}
        # Units held per SKU by every reserved reservation (what it asked for, less what it was
        # short): kept as reservations are written, so a PUT costs the same however many exist.
        self._held: dict[str, int] = {}
        self.versions_written = 0  # every stored version, first ones included

    def put(
        self, reservation_id: str, body: Any, now: datetime
    ) -> tuple[bool | None, StoredReservation]:
        """Upsert; returns (created: True | False when a new version was written | None for a no-op)."""
        wanted = validate_reservation(body, self.config.known_skus)
        with self._lock:
            stored = self._reservations.get(reservation_id)
            if stored is not None and stored.order_id != wanted["order_id"]:
                raise ReservationConflict(
                    f"reservation {reservation_id} belongs to order {stored.order_id}, "
                    f"not {wanted['order_id']}"
                )
            if stored is not None and stored.request_body() == wanted:
                return None, stored
            if stored is not None:
                self._count_held(stored, -1)
            backordered = self._backorders(wanted)
            version = 1 if stored is None else stored.version + 1
            written = StoredReservation(
                reservation_id=reservation_id,
                version=version,
                backordered=backordered,
                updated_at=now,
                **wanted,
            )
            self._reservations[reservation_id] = written
            self._count_held(written, +1)
            self.versions_written += 1
            return stored is None, written

    def _count_held(self, reservation: StoredReservation, sign: int) -> None:
        """Add (+1) or take out (-1) what `reservation` holds of each SKU."""
        if reservation.status != "reserved":
            return
        short = {line["sku"]: line["quantity"] for line in reservation.backordered}
        for line in reservation.lines:
            held = line["quantity"] - short.get(line["sku"], 0)
            self._held[line["sku"]] = self._held.get(line["sku"], 0) + sign * held

    def _backorders(self, wanted: dict[str, Any]) -> list[dict[str, Any]]:
        """What stock cannot cover, after what the OTHER reserved reservations already hold
        (the caller has taken the reservation's own previous version out of `_held`)."""
        if wanted["status"] != "reserved":
            return []
        backordered = []
        for line in wanted["lines"]:
            available = max(
                0, self.config.stock.get(line["sku"], 0) - self._held.get(line["sku"], 0)
            )
            if line["quantity"] > available:
                backordered.append({"sku": line["sku"], "quantity": line["quantity"] - available})
        return backordered

    def get(self, reservation_id: str) -> StoredReservation | None:
        with self._lock:
            return self._reservations.get(reservation_id)

    def all(self) -> list[StoredReservation]:
        with self._lock:
            return sorted(self._reservations.values(), key=lambda stored: stored.reservation_id)

    def count(self) -> int:
        with self._lock:
            return len(self._reservations)


class WmsApiApp:
    """WSGI callable serving the reservations API of one config."""

    def __init__(
        self,
        config: WmsApiConfig,
        clock: ScenarioClock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.book = ReservationBook(config)
        self.stats = RequestStats(is_api_route=lambda route: route in API_ENDPOINTS)

    def reservations(self) -> list[dict[str, Any]]:
        """Every stored reservation as the API shows it (for tests and the demo)."""
        return [stored.answer() for stored in self.book.all()]

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        return answer_routed(
            Request(environ), start_response, URL_MAP, self.stats, self._route, _refusal
        )

    def _route(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if endpoint in API_ENDPOINTS:
            return self._api(request, endpoint, arguments)
        return json_response(self.stats_payload())

    def stats_payload(self) -> dict[str, Any]:
        return {
            **self.stats.snapshot(),
            "reservations": self.book.count(),
            "versions_written": self.book.versions_written,
        }

    def _api(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        if request.headers.get("X-Api-Key") != self.config.api_key:
            return json_response({"error": "unauthorized"}, 401)
        fault = answering_fault(self.stats, self.config.faults, self.sleep)
        if fault is not None:
            if fault.kind == "rate_limit_burst":
                wait = DEFAULT_RETRY_AFTER if fault.retry_after is None else fault.retry_after
                return json_response(
                    {"error": "rate_limited", "message": "too many requests"},
                    429,
                    {"Retry-After": f"{wait:g}"},
                )
            return json_response({"error": "server_error"}, fault.status)
        if endpoint == "reservations":
            return json_response({"reservations": self.reservations()})
        if endpoint == "reservations_batch":
            entries = bulk_entries(json_or_none(request.get_data()))
            if isinstance(entries, EnvelopeProblem):
                return json_response(
                    {
                        "error": "validation_failed",
                        "message": MALFORMED,
                        "fields": [{"field": entries.field, "message": entries.message}],
                    },
                    400,
                )
            return json_response(bulk_answer(entries, self._upsert))
        reservation_id = arguments["reservation_id"]
        if endpoint == "reservation_get":
            stored = self.book.get(reservation_id)
            if stored is None:
                return json_response({"error": "not_found"}, 404)
            return json_response(stored.answer())
        return self._put(request, reservation_id)

    def _put(self, request: Request, reservation_id: str) -> Response:
        body = json_or_none(request.get_data())
        if body is None and request.get_data().strip() not in (b"", b"null"):
            return _invalid([{"field": "body", "message": "not valid JSON"}])
        status, answer, _ = self._upsert(reservation_id, body, None)
        return json_response(answer, status)

    def _upsert(
        self, reservation_id: str, body: Any, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any], bool]:
        """One reservation's upsert: (status, answer, replayed), for a PUT or a batch entry. The
        WMS is idempotent by content (the same body again is the same version), not by key."""
        if not RESERVATION_ID_RE.fullmatch(reservation_id):
            return _invalid_answer(
                [{"field": "reservation_id", "message": "use 1-100 of A-Z a-z 0-9 . _ : -"}]
            )
        try:
            created, stored = self.book.put(reservation_id, body, self.clock.now())
        except ReservationInvalid as error:
            return _invalid_answer(error.fields)
        except ReservationConflict as error:
            return 409, {"error": "conflict", "message": str(error)}, False
        return (201 if created else 200), stored.answer(), False


def _refusal(request: Request, error: HTTPException) -> Response:
    if isinstance(error, NotFound):
        return json_response({"error": "not_found"}, 404)
    if isinstance(error, MethodNotAllowed):
        return json_response({"error": "method_not_allowed"}, 405)
    return json_response({"error": error.name}, error.code or 500)


def _invalid_answer(fields: list[dict[str, str]]) -> tuple[int, dict[str, Any], bool]:
    return 400, {"error": "validation_failed", "fields": fields}, False


def _invalid(fields: list[dict[str, str]]) -> Response:
    status, answer, _ = _invalid_answer(fields)
    return json_response(answer, status)


class RunningWmsApi(ServedApp):
    """The reservations API listening on a socket; `app` is the WmsApiApp."""

    system_name = "wms"

    @property
    def api_key(self) -> str:
        return self.app.config.api_key

    def reservations(self) -> list[dict[str, Any]]:
        return self.app.reservations()

    def stats(self) -> dict[str, Any]:
        return self.app.stats_payload()

    def system(self) -> dict[str, str]:
        return {"url": self.url, "api_key": self.api_key}


def start_wms_api(
    config: WmsApiConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: ScenarioClock | None = None,
) -> RunningWmsApi:
    """Serve the reservations API from a daemon thread (port 0 picks a free one); returns at once."""
    return serve(RunningWmsApi, config, WmsApiApp(config, standalone_clock(clock)), host, port)
