"""The sandbox storefront as a WSGI app: Shopify Admin REST for orders and products, as Shopify speaks it.

Versioned paths, `X-Shopify-Access-Token`, `status`/`updated_at_*`/`created_at_*`/`since_id`/
`ids`/`fields` filters, Link-header `page_info` cursors (keyset on id, so a clock move between
pages neither skips nor repeats an order), the per-token leaky bucket, and the scenario's faults.
`/_sandbox/*` is the sandbox's own control surface (clock and stats) and needs no token.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from integration_assets.sandbox.clock import ScenarioClock, parse_duration
from integration_assets.sandbox.leaky_bucket import BucketDecision, LeakyBuckets
from integration_assets.sandbox.scenario import (
    API_VERSION_RE,
    SOURCE_CHANGE_KINDS,
    STOREFRONT_RESOURCES,
    Fault,
    Scenario,
)
from integration_assets.sandbox.storefront_orders import OrderBook, ServedOrder
from integration_assets.sandbox.storefront_products import (
    PRODUCT_STATUSES,
    ProductCatalog,
    ServedProduct,
)

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
SELECTION_CACHE_SIZE = 16  # (resource, clock time, filters) selections kept for the next pages
STATUSES = ("open", "closed", "cancelled", "any")
TIME_FILTERS = ("updated_at_min", "updated_at_max", "created_at_min", "created_at_max")
LIST_FILTERS = ("status", *TIME_FILTERS, "since_id", "ids")
PRODUCT_FILTERS = ("status", *TIME_FILTERS, "since_id", "ids", "product_type")
ALLOWED_WITH_PAGE_INFO = {"limit", "fields", "page_info"}
INVALID_TOKEN_MESSAGE = (
    "[API] Invalid API key or access token (unrecognized login or wrong password)"
)
RATE_LIMIT_MESSAGE = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
SERVER_ERROR_MESSAGES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
API_ENDPOINTS = set(STOREFRONT_RESOURCES)
# What Shopify answers on a call at a deprecated version (or to a deprecated endpoint).
DEPRECATED_REASON = "https://shopify.dev/api/usage/versioning#deprecation-practices"
# The scope each resource needs, named in Shopify's 403 for a token that lost it.
RESOURCE_SCOPES = {
    "orders": "read_orders",
    "orders_count": "read_orders",
    "order": "read_orders",
    "order_transactions": "read_orders",
    "products": "read_products",
    "products_count": "read_products",
    "product": "read_products",
}

URL_MAP = Map(
    [
        Rule("/admin/api/<version>/orders.json", endpoint="orders", methods=["GET"]),
        Rule("/admin/api/<version>/orders/count.json", endpoint="orders_count", methods=["GET"]),
        Rule("/admin/api/<version>/orders/<int:order_id>.json", endpoint="order", methods=["GET"]),
        Rule(
            "/admin/api/<version>/orders/<int:order_id>/transactions.json",
            endpoint="order_transactions",
            methods=["GET"],
        ),
        Rule("/admin/api/<version>/products.json", endpoint="products", methods=["GET"]),
        Rule(
            "/admin/api/<version>/products/count.json", endpoint="products_count", methods=["GET"]
        ),
        Rule(
            "/admin/api/<version>/products/<int:product_id>.json",
            endpoint="product",
            methods=["GET"],
        ),
        Rule("/_sandbox/clock", endpoint="clock", methods=["GET", "POST"]),
        Rule("/_sandbox/stats", endpoint="stats", methods=["GET"]),
    ]
)


class BadRequest(Exception):
    """A 400 with Shopify's error body shape: `{"errors": {param: message}}`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return Response(
        body, status=status, headers=headers, content_type="application/json; charset=utf-8"
    )


# A 200 whose body is not JSON: cut in half (a dropped connection, a proxy's limit), or a proxy's
# HTML error page served with status 200.
SPOILED_BODIES = ("truncated_body", "invalid_json")
PROXY_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
)


def spoiled(response: Response, kind: str) -> Response:
    """`response` with its body spoiled the way `kind` says; status and headers kept."""
    body = response.get_data()
    if kind == "truncated_body":
        response.set_data(body[: len(body) // 2])
    else:
        response.set_data(PROXY_ERROR_PAGE)
        response.headers["Content-Type"] = "text/html"
    return response


def _json_bytes_response(body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A 200 whose JSON is already encoded (as `json_response` would have encoded it)."""
    return Response(
        body, status=200, headers=headers, content_type="application/json; charset=utf-8"
    )


def encode_page_info(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_info(token: str) -> dict[str, Any]:
    """The opaque cursor back to {filters, after|before}; BadRequest if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("page_info", "Invalid value.") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("filters"), dict)
        or not any(isinstance(payload.get(key), int) for key in ("after", "before"))
    ):
        raise BadRequest("page_info", "Invalid value.")
    return payload


def parse_filter_time(param: str, value: str, tz: timezone) -> datetime:
    """ISO-8601 with any offset (naive = shop time), compared in UTC at 1-second resolution."""
    # An unencoded `+` in a query string arrives as a space.
    text = value.strip().replace(" ", "+")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(param, f"{value!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Selection:
    """What one list filter matches at one clock time: the items by id ascending, and their ids."""

    items: list[Any]
    ids: list[int]


def keyset_page(
    ids: Sequence[int], limit: int, after: int | None = None, before: int | None = None
) -> tuple[int, int, bool, bool]:
    """The page of an ascending, duplicate-free id list that a cursor asks for.

    Returns `(start, stop, has_next, has_previous)`: the page is `ids[start:stop]`, at most `limit`
    long; after `after` (the first `limit` greater than it), else before `before` (the last `limit`
    smaller than it), else from the start. Binary search, so a page costs O(log n + limit) however
    deep into the list it is.
    """
    if after is not None:
        start = bisect.bisect_right(ids, after)
        return start, min(len(ids), start + limit), len(ids) - start > limit, start > 0
    if before is not None:
        stop = bisect.bisect_left(ids, before)
        return max(0, stop - limit), stop, stop < len(ids), stop > limit
    return 0, min(len(ids), limit), len(ids) > limit, False


class RequestStats:
    """Counts by route and status, so tests can assert what a sandbox server actually answered.

    `is_api_route` says which routes are the system's API (counted in `api_by_status`), as opposed
    to the sandbox's own control endpoints.
    """

    def __init__(
        self, is_api_route: Callable[[str], bool] = lambda route: route in API_ENDPOINTS
    ) -> None:
        self._is_api_route = is_api_route
        self._lock = threading.Lock()
        self._by_route: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._faults: dict[str, int] = defaultdict(int)
        self.api_requests = 0

    def next_api_request(self) -> int:
        with self._lock:
            self.api_requests += 1
            return self.api_requests

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self._by_route[route][str(status)] += 1

    def fault_fired(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_route = {route: dict(statuses) for route, statuses in self._by_route.items()}
            by_status: dict[str, int] = defaultdict(int)
            for route, statuses in by_route.items():
                if self._is_api_route(route):
                    for status, count in statuses.items():
                        by_status[status] += count
            return {
                "api_requests": self.api_requests,
                "by_route": by_route,
                "api_by_status": dict(by_status),
                "faults_fired": dict(self._faults),
            }


class StorefrontApp:
    """WSGI callable serving one scenario's storefront."""

    def __init__(
        self,
        scenario: Scenario,
        clock: ScenarioClock,
        order_book: OrderBook | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.orders = order_book or OrderBook(scenario)
        self.products = ProductCatalog(scenario)
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.buckets = LeakyBuckets(
            scenario.rate_limit.bucket_size, scenario.rate_limit.leak_per_second
        )
        self.stats = RequestStats()
        self.request_faults: list[Fault] = [
            f
            for f in scenario.faults
            if f.kind != "schema_change" and f.kind not in SOURCE_CHANGE_KINDS
        ]
        self.source_changes: list[Fault] = [
            f for f in scenario.faults if f.kind in SOURCE_CHANGE_KINDS
        ]
        self.deprecated_versions = dict(scenario.shop.deprecated_versions)
        self._cursors_refused: dict[int, int] = defaultdict(int)
        # Walking a list is many requests with the same filters at the same clock time: each page
        # reuses the selection the first one made (the order book and catalog never change).
        self._selections: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._selections_lock = threading.Lock()

    # ---- WSGI -------------------------------------------------------------------------------
    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        route = "unmatched"
        try:
            endpoint, arguments = URL_MAP.bind_to_environ(environ).match()
            route = endpoint
            if endpoint in API_ENDPOINTS:
                response = self._api(request, endpoint, arguments)
            else:
                response = getattr(self, f"_control_{endpoint}")(request)
        except NotFound:
            response = json_response({"errors": "Not Found"}, 404)
        except MethodNotAllowed:
            response = json_response({"errors": "Method Not Allowed"}, 405)
        except HTTPException as error:
            response = json_response({"errors": error.name}, error.code or 500)
        self.stats.record(route, response.status_code)
        return response(environ, start_response)

    # ---- the Admin API ----------------------------------------------------------------------
    def served_version(self, requested: str) -> str:
        """A supported version is served as asked; any other falls forward to the oldest supported."""
        supported = self.scenario.shop.supported_versions
        return requested if requested in supported else supported[0]

    def _api(self, request: Request, endpoint: str, arguments: dict[str, Any]) -> Response:
        requested = arguments.pop("version")
        if not API_VERSION_RE.fullmatch(requested):
            return json_response({"errors": "Not Found"}, 404)
        version = self.served_version(requested)
        headers = {"X-Shopify-API-Version": version}
        if version in self.deprecated_versions:
            headers["X-Shopify-API-Deprecated-Reason"] = DEPRECATED_REASON
            sunset = self.deprecated_versions[version]
            if sunset is not None:
                headers["Sunset"] = format_datetime(
                    datetime(sunset.year, sunset.month, sunset.day, tzinfo=UTC), usegmt=True
                )
        token = request.headers.get("X-Shopify-Access-Token")
        if token != self.scenario.shop.access_token:
            return json_response({"errors": INVALID_TOKEN_MESSAGE}, 401, headers)
        request_number = self.stats.next_api_request()
        changed = self._source_change(request, endpoint, requested, headers)
        if changed is not None:
            return changed
        spoil: str | None = None
        for index, fault in enumerate(self.request_faults):
            if fault.kind == "expired_cursor":
                # The first `count` requests after request N that carry a cursor have it refused.
                if (
                    request_number <= fault.after_requests
                    or "page_info" not in request.args
                    or self._cursors_refused[index] >= fault.count
                ):
                    continue
                self._cursors_refused[index] += 1
            elif not fault.covers_request(request_number):
                continue
            self.stats.fault_fired(fault.kind)
            if fault.kind == "slow_response":
                self.sleep(fault.delay_seconds)
                continue
            if fault.kind in SPOILED_BODIES:
                spoil = fault.kind
                continue
            if fault.kind == "expired_cursor":
                return json_response({"errors": {"page_info": "Invalid value."}}, 400, headers)
            headers["X-Shopify-Shop-Api-Call-Limit"] = self.buckets.peek(
                token, self.wall_clock()
            ).header
            if fault.kind == "rate_limit_burst":
                return self._too_many_requests(headers, fault.retry_after)
            return json_response(
                {"errors": SERVER_ERROR_MESSAGES.get(fault.status, "Server Error")},
                fault.status,
                headers,
            )
        decision: BucketDecision = self.buckets.try_acquire(token, self.wall_clock())
        headers["X-Shopify-Shop-Api-Call-Limit"] = decision.header
        if not decision.allowed:
            return self._too_many_requests(headers, None)
        try:
            response = getattr(self, f"_{endpoint}")(request, version, **arguments)
        except BadRequest as error:
            response = json_response({"errors": {error.param: error.message}}, 400)
        response.headers.update(headers)
        return response if spoil is None else spoiled(response, spoil)

    def _source_change(
        self, request: Request, endpoint: str, requested: str, headers: dict[str, str]
    ) -> Response | None:
        """The answer of a source change in force for this resource now (403, 404, 301), if any."""
        now = self.clock.now()
        for fault in self.source_changes:
            if not fault.changes(endpoint, now):
                continue
            if fault.kind == "moved":
                target = fault.to_version or self.scenario.shop.supported_versions[-1]
                if requested == target:
                    continue
                self.stats.fault_fired(fault.kind)
                location = request.url.replace(
                    f"/admin/api/{requested}/", f"/admin/api/{target}/", 1
                )
                return json_response(
                    {"errors": "Moved Permanently"}, 301, {**headers, "Location": location}
                )
            self.stats.fault_fired(fault.kind)
            if fault.kind == "forbidden":
                scope = RESOURCE_SCOPES[endpoint]
                message = f"[API] This action requires merchant approval for {scope} scope."
                return json_response({"errors": message}, 403, headers)
            return json_response({"errors": "Not Found"}, 404, headers)
        return None

    def _too_many_requests(self, headers: dict[str, str], retry_after: float | None) -> Response:
        wait = self.scenario.rate_limit.retry_after if retry_after is None else retry_after
        return json_response(
            {"errors": RATE_LIMIT_MESSAGE}, 429, {**headers, "Retry-After": str(float(wait))}
        )

    def _orders(self, request: Request, version: str) -> Response:
        return self._paged_list(request, version, "orders", LIST_FILTERS, self._filter)

    def _products(self, request: Request, version: str) -> Response:
        return self._paged_list(
            request, version, "products", PRODUCT_FILTERS, self._filter_products
        )

    def _paged_list(
        self,
        request: Request,
        version: str,
        resource: str,
        list_filters: tuple[str, ...],
        select: Callable[[dict[str, str], datetime], list[Any]],
    ) -> Response:
        """A list endpoint: `limit`, `fields` and keyset `page_info` cursors over `select(filters)`."""
        args = request.args
        limit = self._limit(args.get("limit"))
        fields = args.get("fields")
        token = args.get("page_info")
        if token is not None:
            for param in args:
                if param not in ALLOWED_WITH_PAGE_INFO:
                    raise BadRequest(
                        "page_info", f"{param} cannot be passed when page_info is present"
                    )
            cursor = decode_page_info(token)
            filters = {key: str(value) for key, value in cursor["filters"].items()}
        else:
            cursor = {}
            filters = {key: args[key] for key in list_filters if key in args}
        matching = self._selected(resource, filters, select)
        start, stop, has_next, has_previous = keyset_page(
            matching.ids,
            limit,
            after=cursor.get("after"),
            before=cursor.get("before") if cursor.get("after") is None else None,
        )
        page = matching.items[start:stop]
        links = []
        if page and has_next:
            links.append(
                self._link(
                    request,
                    version,
                    limit,
                    fields,
                    filters,
                    {"after": page[-1].id},
                    "next",
                    resource,
                )
            )
        if page and has_previous:
            links.append(
                self._link(
                    request,
                    version,
                    limit,
                    fields,
                    filters,
                    {"before": page[0].id},
                    "previous",
                    resource,
                )
            )
        headers = {"Link": ", ".join(links)} if links else {}
        if not fields and all(isinstance(item, ServedOrder) for item in page):
            # The stored answers joined as they are: the same bytes as encoding the bodies again.
            return _json_bytes_response(
                b'{"%s":[%s]}' % (resource.encode(), b",".join(item.body_json for item in page)),
                headers,
            )
        return json_response(
            {resource: [self._project(item.body, fields) for item in page]}, 200, headers
        )

    def _link(
        self,
        request: Request,
        version: str,
        limit: int,
        fields: str | None,
        filters: dict[str, str],
        position: dict[str, int],
        rel: str,
        resource: str = "orders",
    ) -> str:
        token = encode_page_info({"filters": filters, **position})
        url = f"{request.host_url.rstrip('/')}/admin/api/{version}/{resource}.json?limit={limit}&page_info={token}"
        if fields:
            url += f"&fields={quote(fields, safe=',')}"
        return f'<{url}>; rel="{rel}"'

    def _selected(
        self,
        resource: str,
        filters: dict[str, str],
        select: Callable[[dict[str, str], datetime], list[Any]],
    ) -> Selection:
        """`select(filters, now)`, made once per (resource, clock time, filters) and reused."""
        now = self.clock.now()
        key = (resource, now, tuple(sorted(filters.items())))
        with self._selections_lock:
            cached = self._selections.get(key)
            if cached is not None:
                self._selections.move_to_end(key)
                return cached
        items = select(filters, now)  # a bad filter raises here, and nothing is cached
        selection = Selection(items, [item.id for item in items])
        with self._selections_lock:
            self._selections[key] = selection
            while len(self._selections) > SELECTION_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    def _orders_count(self, request: Request, version: str) -> Response:
        filters = {key: request.args[key] for key in LIST_FILTERS if key in request.args}
        return json_response({"count": len(self._selected("orders", filters, self._filter).ids)})

    def _order(self, request: Request, version: str, order_id: int) -> Response:
        served = self.orders.order_at(order_id, self.clock.now())
        if served is None:
            return json_response({"errors": "Not Found"}, 404)
        if not request.args.get("fields"):
            return _json_bytes_response(b'{"order":%s}' % served.body_json)
        return json_response({"order": self._project(served.body, request.args.get("fields"))})

    def _order_transactions(self, request: Request, version: str, order_id: int) -> Response:
        served = self.orders.order_at(order_id, self.clock.now())
        if served is None:
            return json_response({"errors": "Not Found"}, 404)
        return json_response({"transactions": list(served.transactions)})

    def _products_count(self, request: Request, version: str) -> Response:
        filters = {key: request.args[key] for key in PRODUCT_FILTERS if key in request.args}
        selection = self._selected("products", filters, self._filter_products)
        return json_response({"count": len(selection.ids)})

    def _product(self, request: Request, version: str, product_id: int) -> Response:
        served = self.products.product_at(product_id, self.clock.now())
        if served is None:
            return json_response({"errors": "Not Found"}, 404)
        return json_response({"product": self._project(served.body, request.args.get("fields"))})

    # ---- filters ----------------------------------------------------------------------------
    @staticmethod
    def _limit(value: str | None) -> int:
        if value is None:
            return DEFAULT_LIMIT
        try:
            limit = int(value)
        except ValueError:
            raise BadRequest("limit", f"{value!r} is not an integer") from None
        if limit > MAX_LIMIT:
            raise BadRequest("limit", f"must be less than or equal to {MAX_LIMIT}")
        if limit < 1:
            raise BadRequest("limit", "must be greater than or equal to 1")
        return limit

    def _filter(self, filters: dict[str, str], now: datetime) -> list[ServedOrder]:
        status = filters.get("status", "open")
        if status not in STATUSES:
            raise BadRequest("status", f"{status!r} is not one of {', '.join(STATUSES)}")
        tz = self.scenario.shop.tz
        bounds = {
            name: parse_filter_time(name, filters[name], tz)
            for name in TIME_FILTERS
            if name in filters
        }
        since_id = _integer("since_id", filters["since_id"]) if "since_id" in filters else None
        ids = None
        if filters.get("ids"):
            ids = {_integer("ids", part) for part in filters["ids"].split(",") if part.strip()}
        selected = []
        for order in self.orders.orders_at(now):
            if status == "open" and (order.cancelled or order.closed):
                continue
            if status == "closed" and not order.closed:
                continue
            if status == "cancelled" and not order.cancelled:
                continue
            if since_id is not None and order.id <= since_id:
                continue
            if ids is not None and order.id not in ids:
                continue
            if "updated_at_min" in bounds and order.updated_at < bounds["updated_at_min"]:
                continue
            if "updated_at_max" in bounds and order.updated_at > bounds["updated_at_max"]:
                continue
            if "created_at_min" in bounds and order.created_at < bounds["created_at_min"]:
                continue
            if "created_at_max" in bounds and order.created_at > bounds["created_at_max"]:
                continue
            selected.append(order)
        return selected

    def _filter_products(self, filters: dict[str, str], now: datetime) -> list[ServedProduct]:
        """Products match every status unless `status` (active|archived|draft, comma-separated) is given."""
        statuses = None
        if filters.get("status"):
            statuses = {part.strip() for part in filters["status"].split(",") if part.strip()}
            unknown = sorted(statuses - set(PRODUCT_STATUSES))
            if unknown:
                raise BadRequest(
                    "status", f"{unknown[0]!r} is not one of {', '.join(PRODUCT_STATUSES)}"
                )
        tz = self.scenario.shop.tz
        bounds = {
            name: parse_filter_time(name, filters[name], tz)
            for name in TIME_FILTERS
            if name in filters
        }
        since_id = _integer("since_id", filters["since_id"]) if "since_id" in filters else None
        ids = None
        if filters.get("ids"):
            ids = {_integer("ids", part) for part in filters["ids"].split(",") if part.strip()}
        selected = []
        for product in self.products.products_at(now):
            if statuses is not None and product.status not in statuses:
                continue
            if since_id is not None and product.id <= since_id:
                continue
            if ids is not None and product.id not in ids:
                continue
            if (
                "product_type" in filters
                and product.body.get("product_type") != filters["product_type"]
            ):
                continue
            if "updated_at_min" in bounds and product.updated_at < bounds["updated_at_min"]:
                continue
            if "updated_at_max" in bounds and product.updated_at > bounds["updated_at_max"]:
                continue
            if "created_at_min" in bounds and product.created_at < bounds["created_at_min"]:
                continue
            if "created_at_max" in bounds and product.created_at > bounds["created_at_max"]:
                continue
            selected.append(product)
        return selected

    @staticmethod
    def _project(body: dict[str, Any], fields: str | None) -> dict[str, Any]:
        if not fields:
            return body
        wanted = {name.strip() for name in fields.split(",") if name.strip()}
        return {key: value for key, value in body.items() if key in wanted}

    # ---- sandbox control ----------------------------------------------------------------------
    def _clock_payload(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "now": now.astimezone(self.scenario.shop.tz).isoformat(timespec="seconds"),
            "now_utc": now.isoformat(timespec="seconds"),
            "speed": self.clock.speed,
        }

    def _control_clock(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(self._clock_payload())
        try:
            payload = json.loads(request.get_data() or b"{}")
        except ValueError:
            return json_response({"errors": 'the body must be JSON like {"advance": "4h"}'}, 400)
        if not isinstance(payload, dict) or len({"advance", "set"} & payload.keys()) != 1:
            return json_response(
                {"errors": 'send exactly one of {"advance": "4h"} or {"set": iso}'}, 400
            )
        try:
            if "advance" in payload:
                self.clock.advance(parse_duration(payload["advance"]))
            else:
                self.clock.set(parse_filter_time("set", str(payload["set"]), self.scenario.shop.tz))
        except ValueError as error:
            return json_response({"errors": str(error)}, 400)
        except BadRequest as error:
            return json_response({"errors": error.message}, 400)
        return json_response(self._clock_payload())

    def _control_stats(self, request: Request) -> Response:
        return json_response(self.stats.snapshot())


def _integer(param: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(param, f"{value!r} is not an integer") from None
