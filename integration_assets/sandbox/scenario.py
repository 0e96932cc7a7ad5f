"""The scenario file: what the sandbox storefront serves, when, and which faults it injects.

A scenario is YAML (documented in docs/scenario-format.md). `load_scenario` turns it into frozen
dataclasses and refuses anything it does not understand with a message that names the file, the
path inside it (`stories[2].events[1].sku`) and what is wrong, because a typo in a scenario should
cost seconds, not an afternoon of wondering why an order never shows up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from integration_assets.sandbox.clock import parse_duration
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

if TYPE_CHECKING:
    from integration_assets.sandbox.payments_ledger import PaymentsLedger
    from integration_assets.sandbox.warehouse_files import WarehouseSpec

PACKAGE_FIXTURES_DIR = Path(__file__).parent / "fixtures" / "shopify"
SCENARIOS_DIR = Path(__file__).parent / "scenarios"

EVENT_TYPES: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys) besides `at` and `type`
    "created": ({"lines"}, {"discount", "shipping", "note", "tags", "email", "channel"}),
    "authorized": (set(), {"gateway"}),
    "paid": (set(), {"gateway", "amount"}),
    "line_added": ({"sku", "quantity"}, set()),
    "line_removed": ({"sku"}, set()),
    "quantity_changed": ({"sku", "quantity"}, set()),
    "address_updated": ({"address"}, set()),
    "fulfilled": (set(), {"lines", "tracking_number", "location_id"}),
    "cancelled": (set(), {"reason"}),
    "refunded": (set(), {"lines", "shipping", "restock", "note"}),
    "closed": (set(), set()),
    "note_changed": ({"note"}, set()),
    "corrupt": (set(), {"set", "remove"}),
}
CANCEL_REASONS = {"customer", "fraud", "inventory", "declined", "staff", "other"}
# A `created` event's `channel` -> the order's Shopify `source_name`: the online store is "web", the
# point of sale "pos", and an order from a sales-channel app carries that app's id as a string.
CHANNEL_SOURCE_NAMES = {"web": "web", "pos": "pos", "marketplace": "5806573"}
MIX_KEYS = (
    "fulfilled",
    "partially_fulfilled",
    "cancelled",
    "refunded_partial",
    "refunded_full",
    "edited",
    "address_updated",
    "pending",
)
# kind -> (required keys, optional keys) besides `kind`
FaultKinds = dict[str, tuple[set[str], set[str]]]
FAULT_KINDS: FaultKinds = {
    "rate_limit_burst": ({"after_requests"}, {"count", "retry_after"}),
    "server_error": ({"after_requests"}, {"count", "status"}),
    "slow_response": ({"after_requests", "delay_seconds"}, {"count"}),
    "truncated_body": ({"after_requests"}, {"count"}),
    "invalid_json": ({"after_requests"}, {"count"}),
    "expired_cursor": ({"after_requests"}, {"count"}),
    "schema_change": ({"at"}, {"rename", "remove", "add"}),
    # A change of the source from `at` (until `until`) on one resource (every one when none is
    # named): its token loses the resource's scope (403), the resource is gone (404), or it moved
    # (301 to the same path under `to_version`, by default the newest supported version).
    "forbidden": ({"at"}, {"until", "resource"}),
    "not_found": ({"at"}, {"until", "resource"}),
    "moved": ({"at"}, {"until", "resource", "to_version"}),
}
SOURCE_CHANGE_KINDS = ("forbidden", "not_found", "moved")
# The storefront's Admin API resources (the routes of sandbox/storefront_app.py), as a fault names them.
STOREFRONT_RESOURCES = (
    "orders",
    "orders_count",
    "order",
    "order_transactions",
    "products",
    "products_count",
    "product",
)
SERVER_ERROR_STATUSES = {500, 502, 503, 504}
PAYMENTS_FAULT_KINDS = {"payments_rate_limit": ({"after_requests"}, {"count"})}
DISPUTE_OUTCOMES = ("open", "won", "lost")
DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
API_VERSION_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class ScenarioError(ValueError):
    """A scenario file that cannot be served; the message says file, path and problem."""


@dataclass(frozen=True)
class ClockConfig:
    start: datetime
    speed: float = 0.0


@dataclass(frozen=True)
class ShopConfig:
    domain: str = "sandbox-shop.myshopify.com"
    api_version: str = "2025-07"
    supported_versions: tuple[str, ...] = ("2025-01", "2025-04", "2025-07", "2025-10")
    access_token: str = "shpat_sandbox_token"
    # Versions Shopify has deprecated, each with the date it stops serving it (None: not announced):
    # a call at one is answered with X-Shopify-API-Deprecated-Reason (and a Sunset header).
    deprecated_versions: tuple[tuple[str, date | None], ...] = ()
    timezone_offset: str = "-05:00"
    currency: str = "USD"
    tax_rate: Decimal = Decimal("0.08")

    @property
    def tz(self) -> timezone:
        return parse_offset(self.timezone_offset)


@dataclass(frozen=True)
class RateLimitConfig:
    bucket_size: int = 40
    leak_per_second: float = 2.0
    retry_after: float = 2.0


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    title: str
    variant_title: str | None
    product_id: int
    variant_id: int
    price: Decimal
    grams: int = 0
    requires_shipping: bool = True
    taxable: bool = True
    category: str = ""  # the product's `product_type` (docs/scenario-format.md, "Products")
    in_volume: bool = True  # False: generated orders never pick it (sold only by the stories)


@dataclass(frozen=True)
class CatalogChange:
    """A change to the catalog at `at`: exactly one of price/available (by `sku`) or category/bundle (by
    `product_id`). `bundle` is a tuple of (sku, quantity); an empty tuple makes the product a plain one again.
    """

    at: datetime
    sku: str | None = None
    product_id: int | None = None
    price: Decimal | None = None
    available: bool | None = None
    category: str | None = None
    bundle: tuple[tuple[str, int], ...] | None = None


@dataclass(frozen=True)
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    address: dict[str, Any] = field(default_factory=dict)
    phone: str | None = None
    company: str | None = None  # set: a business customer (a CRM business account plus a contact)
    # Shopify customer tags, e.g. "segment:wholesale", "account-manager:<email>"
    tags: tuple[str, ...] = ()
    in_volume: bool = True  # False: generated orders never pick this customer (only the stories do)


@dataclass(frozen=True)
class StoryEvent:
    at: datetime
    type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderStory:
    """One order's life as events; `label` is for humans and tests, `order_id` pins the id."""

    customer: Customer
    events: tuple[StoryEvent, ...]
    order_id: int | None = None
    label: str | None = None
    currency: str | None = None
    source: str = "story"  # "story" (hand-written) or "generated"


@dataclass(frozen=True)
class VolumeSpec:
    orders: int
    seed: int
    start: datetime
    end: datetime
    mix: dict[str, float]


@dataclass(frozen=True)
class FixtureOrderRef:
    file: Path
    name: str  # as written in the scenario
    appears_at: datetime


@dataclass(frozen=True)
class Fault:
    kind: str
    after_requests: int = 0
    count: int = 1
    retry_after: float | None = None
    status: int = 503
    delay_seconds: float = 0.0
    at: datetime | None = None
    rename: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    add: dict[str, Any] = field(default_factory=dict)
    until: datetime | None = None
    resource: str | None = None  # a source change's resource (None: every one)
    to_version: str | None = None  # where a `moved` resource redirects to (None: newest supported)

    def covers_request(self, request_number: int) -> bool:
        """Request numbers start at 1; `after_requests: N, count: K` covers N+1 .. N+K."""
        return self.after_requests < request_number <= self.after_requests + self.count

    def changes(self, resource: str, now: datetime) -> bool:
        """A source change in force for `resource` at scenario time `now`."""
        return (
            self.at is not None
            and self.at <= now
            and (self.until is None or now < self.until)
            and self.resource in (None, resource)
        )


@dataclass(frozen=True)
class DisputeSpec:
    """A chargeback on an order's first charge (`order` is a story name or an order id)."""

    order: str | int
    opened_at: datetime
    reason: str = "fraudulent"
    outcome: str = "open"  # open | won | lost
    closed_at: datetime | None = None
    responded_at: datetime | None = None


@dataclass(frozen=True)
class PayoutSchedule:
    """Automatic payouts at `at_hour_utc` every `every`; each arrives `delay_days` after it is made."""

    every: timedelta = timedelta(days=1)
    at_hour_utc: int = 0
    delay_days: int = 2


@dataclass(frozen=True)
class PaymentsConfig:
    """The Stripe-compatible payments sandbox (docs/scenario-format.md, "Payments (Stripe)")."""

    secret_key: str = "sk_test_sandbox_payments_not_a_secret_4242"
    fee_percent: Decimal = Decimal("2.9")
    fee_fixed: int = 30
    dispute_fee: int = 1500
    available_after_days: int = 2
    gateways: tuple[str, ...] = ("shopify_payments", "stripe")
    exclude_orders: tuple[str | int, ...] = ()
    disputes: tuple[DisputeSpec, ...] = ()
    payouts: PayoutSchedule | None = PayoutSchedule()
    faults: tuple[Fault, ...] = ()
    seed: int | None = None  # default: the scenario's seed


@dataclass(frozen=True)
class DemoPlan:
    polls: int = 6
    step: str = "4h"
    # Optional explicit clock steps, one per poll (fine early, coarse later); overrides polls and step.
    steps: tuple[str, ...] = ()

    def clock_steps(self) -> tuple[str, ...]:
        return self.steps or (self.step,) * self.polls


@dataclass(frozen=True)
class Scenario:
    name: str
    clock: ClockConfig
    shop: ShopConfig
    description: str = ""
    seed: int = 0
    rate_limit: RateLimitConfig = RateLimitConfig()
    catalog: tuple[CatalogItem, ...] = ()
    customers: tuple[Customer, ...] = ()
    stories: tuple[OrderStory, ...] = ()
    volume: VolumeSpec | None = None
    fixture_orders: tuple[FixtureOrderRef, ...] = ()
    faults: tuple[Fault, ...] = ()
    demo: DemoPlan = DemoPlan()
    source_path: Path | None = None
    payments: PaymentsConfig = PaymentsConfig()
    warehouse: WarehouseSpec | None = None  # the WMS file drops (sandbox/warehouse_files.py)
    catalog_changes: tuple[CatalogChange, ...] = ()  # products over time (storefront_products.py)
    # The working systems the pipeline writes into (sandbox/erp_app.py, crm_app.py, wms_api.py);
    # None: served with their defaults (see `erp_config()` and friends).
    erp: Any = None
    crm: Any = None
    wms_api: Any = None

    def catalog_by_sku(self) -> dict[str, CatalogItem]:
        return {item.sku: item for item in self.catalog}

    def erp_config(self):
        from integration_assets.sandbox.erp_app import ErpConfig

        return self.erp or ErpConfig()

    def crm_config(self):
        from integration_assets.sandbox.crm_config import CrmConfig

        return self.crm or CrmConfig()

    def wms_api_config(self):
        """Without a `wms_api:` section the WMS knows the catalog's SKUs and holds no stock figure."""
        from integration_assets.sandbox.wms_api import WmsApiConfig

        if self.wms_api is not None:
            return self.wms_api
        return WmsApiConfig(skus=frozenset(self.catalog_by_sku()))


def parse_offset(text: str) -> timezone:
    """`-05:00`, `+02:00`, `Z` or `UTC` -> a fixed-offset timezone."""
    if text in ("Z", "UTC", "+00:00", "-00:00"):
        return UTC
    try:
        sign = -1 if text[0] == "-" else 1
        if text[0] not in "+-":
            raise ValueError(text)
        hours, minutes = text[1:].split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    except (ValueError, IndexError):
        raise ValueError(
            f"invalid UTC offset {text!r}: expected like '-05:00' or '+02:00'"
        ) from None


def parse_time(value: Any, clock_start: datetime | None, tz: timezone) -> datetime:
    """A scenario TIME: an ISO timestamp (naive = shop offset) or `+2h`/`-30m`/`+1d3h` from clock start."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        if clock_start is None:
            raise ValueError(f"relative time {value!r} needs clock.start to be set")
        return clock_start + parse_duration(value.strip())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"invalid time {value!r}: use ISO-8601 like '2026-11-20T09:00:00-05:00' "
                "or an offset from clock.start like '+2h', '+1d3h', '-30m'"
            ) from None
    else:
        raise ValueError(f"invalid time {value!r}: expected an ISO timestamp or '+2h'")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC).replace(microsecond=0)


class _Reader(StrictYamlReader):
    """Typed access to the scenario YAML that fails with `file: path: problem` (a ScenarioError)."""

    error_class = ScenarioError

    def __init__(self, file: Path) -> None:
        super().__init__(file)
        self.tz: timezone = UTC
        self.clock_start: datetime | None = None

    def money(self, value: Any, path: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(path, f"expected a money amount like '19.90', got {value!r}")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(path, f"expected a money amount like '19.90', got {value!r}") from None
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise self.fail(
                path, f"expected a non-negative amount with <= 2 decimals, got {value!r}"
            )
        return amount.quantize(Decimal("0.01"))

    def time(self, value: Any, path: str) -> datetime:
        try:
            return parse_time(value, self.clock_start, self.tz)
        except ValueError as error:
            raise self.fail(path, str(error)) from None

    def duration(self, value: Any, path: str) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as error:
            raise self.fail(path, str(error)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and dry-run a scenario file; raises ScenarioError naming file, path and problem."""
    return load_scenario_with_ledger(path)[0]


def load_scenario_with_ledger(path: str | Path) -> tuple[Scenario, PaymentsLedger]:
    """`load_scenario`, plus the payments ledger its dry run built (whose order book is the
    storefront's): a server serves from it instead of replaying every story a second time."""
    file = Path(path)
    scenario = parse_scenario(load_yaml_file(file, ScenarioError, "scenario"), file)
    # Dry-run every story so an impossible event (refunding a SKU the order never had) fails now,
    # with its path, instead of as a 500 in the middle of a test. The payments ledger replays them
    # (its order book is the storefront's), so one replay checks the stories, the payments side (a
    # dispute on an order that was never charged) and, from the same book, the warehouse's files.
    from integration_assets.sandbox.payments_ledger import PaymentsLedger
    from integration_assets.sandbox.storefront_orders import StoryError

    try:
        ledger = PaymentsLedger(scenario)
    except StoryError as error:
        raise ScenarioError(f"{file}: {error.path}: {error.problem}") from None
    if scenario.warehouse is not None:  # a duplicate of a file that is never dropped fails now
        from integration_assets.sandbox.warehouse_files import WarehouseError, warehouse_plan

        try:
            warehouse_plan(scenario, ledger.order_book)
        except WarehouseError as error:
            raise ScenarioError(f"{file}: {error.path}: {error.problem}") from None
    return scenario, ledger


def parse_scenario(raw: Any, file: Path) -> Scenario:
    reader = _Reader(file)
    top = reader.mapping(
        raw,
        "",
        {
            "name",
            "description",
            "seed",
            "clock",
            "shop",
            "rate_limit",
            "catalog",
            "customers",
            "stories",
            "volume",
            "fixture_orders",
            "faults",
            "demo",
            "payments",
            "warehouse",
            "catalog_changes",
            "erp",
            "crm",
            "wms_api",
        },
    )
    shop = _parse_shop(reader, top.get("shop") or {})
    reader.tz = shop.tz
    clock = _parse_clock(reader, top.get("clock"))
    reader.clock_start = clock.start
    catalog = _parse_catalog(reader, top.get("catalog"))
    customers = _parse_customers(reader, top.get("customers"))
    skus = {item.sku for item in catalog}
    stories = tuple(
        _parse_story(reader, story, f"stories[{index}]", customers, skus)
        for index, story in enumerate(reader.listing(top.get("stories"), "stories"))
    )
    volume = _parse_volume(reader, top.get("volume"), top.get("seed", 0))
    if volume is not None and volume.orders > 0:
        if not catalog:
            raise reader.fail("volume", "generated orders need a non-empty catalog")
        if not customers:
            raise reader.fail("volume", "generated orders need at least one customer")
    name = top.get("name") or file.stem
    faults = tuple(
        parse_fault(reader, fault, f"faults[{index}]")
        for index, fault in enumerate(reader.listing(top.get("faults"), "faults"))
    )
    for index, fault in enumerate(faults):
        if fault.to_version is not None and fault.to_version not in shop.supported_versions:
            raise reader.fail(
                f"faults[{index}].to_version",
                f"{fault.to_version} is not in shop.supported_versions",
            )
    return Scenario(
        name=reader.string(name, "name"),
        description=str(top.get("description") or ""),
        seed=reader.integer(top.get("seed", 0), "seed"),
        clock=clock,
        shop=shop,
        rate_limit=_parse_rate_limit(reader, top.get("rate_limit") or {}),
        catalog=catalog,
        customers=customers,
        stories=stories,
        volume=volume,
        fixture_orders=_parse_fixture_orders(reader, top.get("fixture_orders")),
        faults=faults,
        demo=_parse_demo(reader, top.get("demo") or {}),
        source_path=file,
        payments=_parse_payments(reader, top.get("payments") or {}),
        warehouse=_parse_warehouse(reader, top.get("warehouse"), skus, stories),
        catalog_changes=_parse_catalog_changes(reader, top.get("catalog_changes"), catalog),
        erp=_parse_working_system(reader, top, "erp"),
        crm=_parse_working_system(reader, top, "crm"),
        wms_api=_parse_working_system(reader, top, "wms_api"),
    )


def _parse_working_system(reader: _Reader, top: dict[str, Any], key: str) -> Any:
    """The ERP, CRM and WMS API sections are parsed by their own sandbox modules."""
    if top.get(key) is None:
        return None
    if key == "erp":
        from integration_assets.sandbox.erp_app import parse_erp

        return parse_erp(reader, top[key])
    if key == "crm":
        from integration_assets.sandbox.crm_config import parse_crm

        return parse_crm(reader, top[key])
    from integration_assets.sandbox.wms_api import parse_wms_api

    return parse_wms_api(reader, top[key])


def _parse_warehouse(
    reader: _Reader, raw: Any, skus: set[str], stories: tuple[OrderStory, ...]
) -> WarehouseSpec | None:
    from integration_assets.sandbox.warehouse_files import parse_warehouse

    labels = {story.label for story in stories if story.label}
    return parse_warehouse(reader, raw, skus, labels)


def _parse_shop(reader: _Reader, raw: Any) -> ShopConfig:
    data = reader.mapping(
        raw,
        "shop",
        {
            "domain",
            "api_version",
            "supported_versions",
            "access_token",
            "deprecated_versions",
            "timezone_offset",
            "currency",
            "tax_rate",
        },
    )
    defaults = ShopConfig()
    api_version = str(data.get("api_version", defaults.api_version))
    supported = tuple(
        _api_version(reader, version, f"shop.supported_versions[{index}]")
        for index, version in enumerate(
            reader.listing(
                data.get("supported_versions", list(defaults.supported_versions)),
                "shop.supported_versions",
            )
        )
    )
    _api_version(reader, api_version, "shop.api_version")
    if not supported:
        raise reader.fail("shop.supported_versions", "list at least one version")
    if api_version not in supported:
        raise reader.fail("shop.api_version", f"{api_version} is not in shop.supported_versions")
    offset = str(data.get("timezone_offset", defaults.timezone_offset))
    try:
        parse_offset(offset)
    except ValueError as error:
        raise reader.fail("shop.timezone_offset", str(error)) from None
    currency = reader.string(data.get("currency", defaults.currency), "shop.currency")
    if len(currency) != 3 or not currency.isupper():
        raise reader.fail(
            "shop.currency", f"expected an ISO 4217 code like 'USD', got {currency!r}"
        )
    tax_rate = Decimal(str(reader.number(data.get("tax_rate", 0.08), "shop.tax_rate", 0)))
    deprecated = []
    for version, sunset in reader.mapping(
        data.get("deprecated_versions") or {}, "shop.deprecated_versions"
    ).items():
        where = f"shop.deprecated_versions.{version}"
        version = _api_version(reader, version, where)
        if version not in supported:
            raise reader.fail(where, f"{version} is not in shop.supported_versions")
        deprecated.append(
            (version, None if sunset is None else _sunset_date(reader, sunset, where))
        )
    return ShopConfig(
        domain=reader.string(data.get("domain", defaults.domain), "shop.domain"),
        api_version=api_version,
        supported_versions=tuple(sorted(supported)),
        access_token=reader.string(
            data.get("access_token", defaults.access_token), "shop.access_token"
        ),
        deprecated_versions=tuple(sorted(deprecated)),
        timezone_offset=offset,
        currency=currency,
        tax_rate=tax_rate,
    )


def _sunset_date(reader: _Reader, value: Any, path: str) -> date:
    """A sunset date: `2026-07-01` (YAML may already have read it as a date)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise reader.fail(
            path, f"expected a sunset date like 2026-07-01 or null, got {value!r}"
        ) from None


def _api_version(reader: _Reader, value: Any, path: str) -> str:
    if not isinstance(value, str) or not API_VERSION_RE.fullmatch(value):
        raise reader.fail(path, f"expected an API version like '2025-07', got {value!r}")
    return value


def _parse_clock(reader: _Reader, raw: Any) -> ClockConfig:
    data = reader.mapping(raw, "clock", {"start", "speed"})
    if "start" not in data:
        raise reader.fail("clock.start", "required (an ISO timestamp)")
    start = reader.time(data["start"], "clock.start")
    return ClockConfig(start=start, speed=reader.number(data.get("speed", 0), "clock.speed", 0))


def _parse_rate_limit(reader: _Reader, raw: Any) -> RateLimitConfig:
    data = reader.mapping(raw, "rate_limit", {"bucket_size", "leak_per_second", "retry_after"})
    return RateLimitConfig(
        bucket_size=reader.integer(data.get("bucket_size", 40), "rate_limit.bucket_size", 1),
        leak_per_second=reader.number(
            data.get("leak_per_second", 2.0), "rate_limit.leak_per_second", 0
        ),
        retry_after=reader.number(data.get("retry_after", 2.0), "rate_limit.retry_after", 0),
    )


def _parse_catalog(reader: _Reader, raw: Any) -> tuple[CatalogItem, ...]:
    items = []
    seen: set[str] = set()
    for index, entry in enumerate(reader.listing(raw, "catalog")):
        path = f"catalog[{index}]"
        data = reader.mapping(
            entry,
            path,
            {
                "sku",
                "title",
                "variant_title",
                "product_id",
                "variant_id",
                "price",
                "grams",
                "requires_shipping",
                "taxable",
                "category",
                "in_volume",
            },
        )
        for key in ("sku", "title", "product_id", "variant_id", "price"):
            if key not in data:
                raise reader.fail(f"{path}.{key}", "required")
        sku = reader.string(data["sku"], f"{path}.sku")
        if sku in seen:
            raise reader.fail(f"{path}.sku", f"duplicate SKU {sku!r}")
        seen.add(sku)
        variant_title = data.get("variant_title")
        items.append(
            CatalogItem(
                sku=sku,
                title=reader.string(data["title"], f"{path}.title"),
                variant_title=None if variant_title is None else str(variant_title),
                product_id=reader.integer(data["product_id"], f"{path}.product_id", 1),
                variant_id=reader.integer(data["variant_id"], f"{path}.variant_id", 1),
                price=reader.money(data["price"], f"{path}.price"),
                grams=reader.integer(data.get("grams", 0), f"{path}.grams", 0),
                requires_shipping=bool(data.get("requires_shipping", True)),
                taxable=bool(data.get("taxable", True)),
                category=str(data.get("category") or ""),
                in_volume=_flag(reader, data.get("in_volume", True), f"{path}.in_volume"),
            )
        )
    return tuple(items)


def _flag(reader: _Reader, value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise reader.fail(path, f"expected true or false, got {value!r}")
    return value


CATALOG_CHANGE_KINDS = {
    "price": "sku",
    "available": "sku",
    "category": "product_id",
    "bundle": "product_id",
}


def _parse_catalog_changes(
    reader: _Reader, raw: Any, catalog: tuple[CatalogItem, ...]
) -> tuple[CatalogChange, ...]:
    """`catalog_changes: [{at, sku, price} | {at, sku, available} | {at, product_id, category} |
    {at, product_id, bundle: [{sku, quantity}]}]`, each naming exactly one change."""
    skus = {item.sku for item in catalog}
    products = {item.product_id for item in catalog}
    changes = []
    for index, entry in enumerate(reader.listing(raw, "catalog_changes")):
        path = f"catalog_changes[{index}]"
        data = reader.mapping(entry, path, {"at", *CATALOG_CHANGE_KINDS, "sku", "product_id"})
        if "at" not in data:
            raise reader.fail(f"{path}.at", "required (when the change happens)")
        kinds = [kind for kind in CATALOG_CHANGE_KINDS if kind in data]
        if len(kinds) != 1:
            raise reader.fail(
                path,
                f"give exactly one of {', '.join(CATALOG_CHANGE_KINDS)}, got {kinds or 'none'}",
            )
        kind = kinds[0]
        target = CATALOG_CHANGE_KINDS[kind]
        other = "product_id" if target == "sku" else "sku"
        if other in data:
            raise reader.fail(
                f"{path}.{other}", f"a '{kind}' change names its {target}, not a {other}"
            )
        if target not in data:
            raise reader.fail(f"{path}.{target}", f"required for a '{kind}' change")
        change: dict[str, Any] = {"at": reader.time(data["at"], f"{path}.at")}
        if target == "sku":
            change["sku"] = _sku(reader, data["sku"], f"{path}.sku", skus)
        else:
            product_id = reader.integer(data["product_id"], f"{path}.product_id", 1)
            if product_id not in products:
                known = ", ".join(str(p) for p in sorted(products)) or "none defined"
                raise reader.fail(
                    f"{path}.product_id",
                    f"unknown product {product_id} (catalog products: {known})",
                )
            change["product_id"] = product_id
        if kind == "price":
            change["price"] = reader.money(data["price"], f"{path}.price")
        elif kind == "available":
            if not isinstance(data["available"], bool):
                raise reader.fail(
                    f"{path}.available", f"expected true or false, got {data['available']!r}"
                )
            change["available"] = data["available"]
        elif kind == "category":
            change["category"] = reader.string(data["category"], f"{path}.category")
        else:
            own = {item.sku for item in catalog if item.product_id == change["product_id"]}
            components = []
            for position, component in enumerate(reader.listing(data["bundle"], f"{path}.bundle")):
                where = f"{path}.bundle[{position}]"
                part = reader.mapping(component, where, {"sku", "quantity"})
                sku = _sku(reader, part.get("sku"), f"{where}.sku", skus)
                if sku in own:
                    raise reader.fail(
                        f"{where}.sku", f"{sku!r} belongs to the bundle product itself"
                    )
                if sku in {existing for existing, _ in components}:
                    raise reader.fail(f"{where}.sku", f"{sku!r} is listed twice")
                components.append(
                    (sku, reader.integer(part.get("quantity", 1), f"{where}.quantity", 1))
                )
            change["bundle"] = tuple(components)
        changes.append(CatalogChange(**change))
    return tuple(changes)


def _parse_customers(reader: _Reader, raw: Any) -> tuple[Customer, ...]:
    customers = []
    seen: set[int] = set()
    for index, entry in enumerate(reader.listing(raw, "customers")):
        path = f"customers[{index}]"
        data = reader.mapping(
            entry,
            path,
            {
                "id",
                "email",
                "first_name",
                "last_name",
                "address",
                "phone",
                "company",
                "tags",
                "in_volume",
            },
        )
        for key in ("id", "email", "first_name", "last_name"):
            if key not in data:
                raise reader.fail(f"{path}.{key}", "required")
        customer_id = reader.integer(data["id"], f"{path}.id", 1)
        if customer_id in seen:
            raise reader.fail(f"{path}.id", f"duplicate customer id {customer_id}")
        seen.add(customer_id)
        customers.append(
            Customer(
                id=customer_id,
                email=reader.string(data["email"], f"{path}.email"),
                first_name=reader.string(data["first_name"], f"{path}.first_name"),
                last_name=reader.string(data["last_name"], f"{path}.last_name"),
                address=dict(reader.mapping(data.get("address") or {}, f"{path}.address")),
                phone=None
                if data.get("phone") is None
                else reader.string(data["phone"], f"{path}.phone"),
                company=None
                if data.get("company") is None
                else reader.string(data["company"], f"{path}.company"),
                tags=tuple(
                    reader.string(tag, f"{path}.tags[{i}]")
                    for i, tag in enumerate(reader.listing(data.get("tags"), f"{path}.tags"))
                ),
                in_volume=_flag(reader, data.get("in_volume", True), f"{path}.in_volume"),
            )
        )
    return tuple(customers)


def _find_customer(
    reader: _Reader, ref: Any, path: str, customers: tuple[Customer, ...]
) -> Customer:
    for customer in customers:
        if ref == customer.id or ref == customer.email:
            return customer
    known = ", ".join(str(customer.id) for customer in customers) or "none defined"
    raise reader.fail(
        path, f"unknown customer {ref!r} (use an id or email from customers: {known})"
    )


def _parse_story(
    reader: _Reader, raw: Any, path: str, customers: tuple[Customer, ...], skus: set[str]
) -> OrderStory:
    data = reader.mapping(raw, path, {"id", "name", "customer", "currency", "events"})
    if "customer" not in data:
        raise reader.fail(f"{path}.customer", "required (a customer id or email)")
    customer = _find_customer(reader, data["customer"], f"{path}.customer", customers)
    raw_events = reader.listing(data.get("events"), f"{path}.events")
    if not raw_events:
        raise reader.fail(f"{path}.events", "a story needs at least a 'created' event")
    events = [
        _parse_event(reader, event, f"{path}.events[{index}]", skus)
        for index, event in enumerate(raw_events)
    ]
    created = [index for index, event in enumerate(events) if event.type == "created"]
    if len(created) != 1:
        raise reader.fail(
            f"{path}.events", f"needs exactly one 'created' event, has {len(created)}"
        )
    created_at = events[created[0]].at
    for index, event in enumerate(events):
        if event.at < created_at:
            raise reader.fail(
                f"{path}.events[{index}].at",
                f"{event.type} at {event.at.isoformat()} is before the order is created "
                f"({created_at.isoformat()})",
            )
    currency = data.get("currency")
    if currency is not None:
        currency = reader.string(currency, f"{path}.currency")
    order_id = data.get("id")
    return OrderStory(
        customer=customer,
        # Kept in written order so errors can name events by their index; the order model sorts
        # them by time (stable, so events at the same time apply in the order written).
        events=tuple(events),
        order_id=None if order_id is None else reader.integer(order_id, f"{path}.id", 1),
        label=None if data.get("name") is None else str(data["name"]),
        currency=currency,
    )


def _parse_lines(
    reader: _Reader, raw: Any, path: str, skus: set[str], min_quantity: int = 1
) -> list[dict[str, Any]]:
    lines = []
    for index, entry in enumerate(reader.listing(raw, path)):
        line_path = f"{path}[{index}]"
        data = reader.mapping(entry, line_path, {"sku", "quantity", "price"})
        sku = _sku(reader, data.get("sku"), f"{line_path}.sku", skus)
        line = {
            "sku": sku,
            "quantity": reader.integer(
                data.get("quantity", 1), f"{line_path}.quantity", min_quantity
            ),
        }
        if "price" in data:
            line["price"] = reader.money(data["price"], f"{line_path}.price")
        lines.append(line)
    return lines


def _sku(reader: _Reader, value: Any, path: str, skus: set[str]) -> str:
    sku = reader.string(value, path)
    if sku not in skus:
        raise reader.fail(path, f"unknown SKU {sku!r} (not in catalog)")
    return sku


def _parse_event(reader: _Reader, raw: Any, path: str, skus: set[str]) -> StoryEvent:
    data = reader.mapping(raw, path)
    event_type = data.get("type")
    if event_type not in EVENT_TYPES:
        raise reader.fail(
            f"{path}.type",
            f"unknown event type {event_type!r} (expected one of: {', '.join(EVENT_TYPES)})",
        )
    required, optional = EVENT_TYPES[event_type]
    reader.mapping(data, path, required | optional | {"at", "type"})
    for key in sorted(required | {"at"}):
        if key not in data:
            raise reader.fail(f"{path}.{key}", f"required for a '{event_type}' event")
    at = reader.time(data["at"], f"{path}.at")
    fields: dict[str, Any] = {
        key: value for key, value in data.items() if key not in ("at", "type")
    }
    if event_type == "created":
        fields["lines"] = _parse_lines(reader, data["lines"], f"{path}.lines", skus)
        if not fields["lines"]:
            raise reader.fail(f"{path}.lines", "an order needs at least one line")
        if "discount" in data:
            discount = reader.mapping(
                data["discount"], f"{path}.discount", {"code", "amount", "percent"}
            )
            if ("amount" in discount) == ("percent" in discount):
                raise reader.fail(f"{path}.discount", "give exactly one of 'amount' or 'percent'")
            parsed = {"code": str(discount.get("code", "DISCOUNT"))}
            if "amount" in discount:
                parsed["amount"] = reader.money(discount["amount"], f"{path}.discount.amount")
            else:
                percent = reader.number(discount["percent"], f"{path}.discount.percent", 0)
                if percent > 100:
                    raise reader.fail(f"{path}.discount.percent", "must be <= 100")
                parsed["percent"] = Decimal(str(percent))
            fields["discount"] = parsed
        if "shipping" in data:
            shipping = reader.mapping(
                data["shipping"], f"{path}.shipping", {"title", "price", "code"}
            )
            fields["shipping"] = {
                "title": str(shipping.get("title", "Standard")),
                "code": str(shipping.get("code", shipping.get("title", "Standard"))),
                "price": reader.money(shipping.get("price", 0), f"{path}.shipping.price"),
            }
        if "tags" in data and not isinstance(data["tags"], str | list):
            raise reader.fail(f"{path}.tags", "expected a string or a list of strings")
        channel = data.get("channel", "web")
        if channel not in CHANNEL_SOURCE_NAMES:
            raise reader.fail(
                f"{path}.channel",
                f"unknown channel {channel!r} (one of {', '.join(CHANNEL_SOURCE_NAMES)})",
            )
        fields["channel"] = channel
    elif event_type in ("line_added", "quantity_changed"):
        fields["sku"] = _sku(reader, data["sku"], f"{path}.sku", skus)
        minimum = 1 if event_type == "line_added" else 0
        fields["quantity"] = reader.integer(data["quantity"], f"{path}.quantity", minimum)
    elif event_type == "line_removed":
        fields["sku"] = _sku(reader, data["sku"], f"{path}.sku", skus)
    elif event_type in ("fulfilled", "refunded"):
        if "lines" in data:
            fields["lines"] = _parse_lines(reader, data["lines"], f"{path}.lines", skus)
        for flag in ("shipping", "restock"):
            if flag in data and not isinstance(data[flag], bool):
                raise reader.fail(f"{path}.{flag}", f"expected true or false, got {data[flag]!r}")
    elif event_type == "paid" and "amount" in data:
        fields["amount"] = reader.money(data["amount"], f"{path}.amount")
    elif event_type == "cancelled":
        reason = data.get("reason", "customer")
        if reason not in CANCEL_REASONS:
            raise reader.fail(
                f"{path}.reason",
                f"unknown reason {reason!r} (one of {', '.join(sorted(CANCEL_REASONS))})",
            )
        fields["reason"] = reason
    elif event_type == "address_updated":
        fields["address"] = dict(reader.mapping(data["address"], f"{path}.address"))
    elif event_type == "corrupt":
        if not data.get("set") and not data.get("remove"):
            raise reader.fail(path, "a 'corrupt' event needs 'set' and/or 'remove'")
        fields["set"] = dict(reader.mapping(data.get("set") or {}, f"{path}.set"))
        fields["remove"] = [
            reader.string(item, f"{path}.remove[{index}]")
            for index, item in enumerate(reader.listing(data.get("remove"), f"{path}.remove"))
        ]
    return StoryEvent(at=at, type=event_type, fields=fields)


def _parse_volume(reader: _Reader, raw: Any, default_seed: Any) -> VolumeSpec | None:
    if raw is None:
        return None
    data = reader.mapping(raw, "volume", {"orders", "seed", "start", "end", "mix"})
    start = reader.time(data.get("start", "+0h"), "volume.start")
    end = reader.time(data.get("end", "+24h"), "volume.end")
    if end < start:
        raise reader.fail(
            "volume.end", f"{end.isoformat()} is before volume.start {start.isoformat()}"
        )
    mix_raw = reader.mapping(data.get("mix") or {"fulfilled": 1.0}, "volume.mix", set(MIX_KEYS))
    mix = {key: reader.number(value, f"volume.mix.{key}", 0) for key, value in mix_raw.items()}
    total = sum(mix.values())
    if total > 1.0 + 1e-9:
        raise reader.fail("volume.mix", f"shares add up to {total:.3f}; they must add up to <= 1")
    return VolumeSpec(
        orders=reader.integer(data.get("orders", 0), "volume.orders", 0),
        seed=reader.integer(data.get("seed", default_seed), "volume.seed"),
        start=start,
        end=end,
        mix=mix,
    )


def _parse_fixture_orders(reader: _Reader, raw: Any) -> tuple[FixtureOrderRef, ...]:
    refs = []
    for index, entry in enumerate(reader.listing(raw, "fixture_orders")):
        path = f"fixture_orders[{index}]"
        data = reader.mapping(entry, path, {"file", "appears_at"})
        name = reader.string(data.get("file"), f"{path}.file")
        candidates = [reader.file.parent / name, PACKAGE_FIXTURES_DIR / name]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise reader.fail(
                f"{path}.file",
                f"{name!r} not found next to the scenario or under {PACKAGE_FIXTURES_DIR}",
            )
        refs.append(
            FixtureOrderRef(
                file=found,
                name=name,
                appears_at=reader.time(data.get("appears_at", "+0h"), f"{path}.appears_at"),
            )
        )
    return tuple(refs)


def parse_fault(reader: _Reader, raw: Any, path: str, kinds: FaultKinds = FAULT_KINDS) -> Fault:
    """One fault of `kinds` (the storefront's unless a sandbox names its own): request-numbered
    (`after_requests`, `count`, ...) or, for the storefront, a `schema_change` at a time.
    Anything else fails with the path of the offending key, the same for every sandbox."""
    data = reader.mapping(raw, path)
    kind = data.get("kind")
    if kind not in kinds:
        raise reader.fail(
            f"{path}.kind",
            f"unknown fault kind {kind!r} (expected one of: {', '.join(kinds)})",
        )
    required, optional = kinds[kind]
    reader.mapping(data, path, required | optional | {"kind"})
    for key in sorted(required):
        if key not in data:
            raise reader.fail(f"{path}.{key}", f"required for a '{kind}' fault")
    if kind in SOURCE_CHANGE_KINDS:
        at = reader.time(data["at"], f"{path}.at")
        until = None if data.get("until") is None else reader.time(data["until"], f"{path}.until")
        if until is not None and until <= at:
            raise reader.fail(f"{path}.until", "must be after 'at'")
        resource = data.get("resource")
        if resource is not None and resource not in STOREFRONT_RESOURCES:
            raise reader.fail(
                f"{path}.resource",
                f"unknown resource {resource!r} (expected one of: {', '.join(STOREFRONT_RESOURCES)})",
            )
        to_version = data.get("to_version")
        if to_version is not None:
            to_version = _api_version(reader, to_version, f"{path}.to_version")
        return Fault(kind=kind, at=at, until=until, resource=resource, to_version=to_version)
    if kind == "schema_change":
        rename = reader.mapping(data.get("rename") or {}, f"{path}.rename")
        remove = reader.listing(data.get("remove"), f"{path}.remove")
        add = reader.mapping(data.get("add") or {}, f"{path}.add")
        if not (rename or remove or add):
            raise reader.fail(path, "a schema_change needs 'rename', 'remove' or 'add'")
        return Fault(
            kind=kind,
            at=reader.time(data["at"], f"{path}.at"),
            rename={
                str(old): reader.string(new, f"{path}.rename.{old}") for old, new in rename.items()
            },
            remove=tuple(
                reader.string(item, f"{path}.remove[{i}]") for i, item in enumerate(remove)
            ),
            add=dict(add),
        )
    # Only a `server_error` may name its status; every other kind keeps the default 503.
    status = reader.integer(data.get("status", 503), f"{path}.status")
    if status not in SERVER_ERROR_STATUSES:
        raise reader.fail(
            f"{path}.status", f"expected one of {sorted(SERVER_ERROR_STATUSES)}, got {status}"
        )
    retry_after = data.get("retry_after")
    return Fault(
        kind=kind,
        after_requests=reader.integer(data["after_requests"], f"{path}.after_requests", 0),
        count=reader.integer(data.get("count", 1), f"{path}.count", 1),
        retry_after=None
        if retry_after is None
        else reader.number(retry_after, f"{path}.retry_after", 0),
        status=status,
        delay_seconds=reader.number(data.get("delay_seconds", 0), f"{path}.delay_seconds", 0),
    )


def _parse_demo(reader: _Reader, raw: Any) -> DemoPlan:
    data = reader.mapping(raw, "demo", {"polls", "step", "steps"})
    step = data.get("step", "4h")
    reader.duration(step, "demo.step")
    steps = tuple(str(item) for item in reader.listing(data.get("steps"), "demo.steps"))
    for index, item in enumerate(steps):
        reader.duration(item, f"demo.steps[{index}]")
    return DemoPlan(
        polls=reader.integer(data.get("polls", 6), "demo.polls", 1), step=str(step), steps=steps
    )


def _parse_payments(reader: _Reader, raw: Any) -> PaymentsConfig:
    data = reader.mapping(
        raw,
        "payments",
        {
            "secret_key",
            "fee_percent",
            "fee_fixed",
            "dispute_fee",
            "available_after_days",
            "gateways",
            "exclude_orders",
            "disputes",
            "payouts",
            "faults",
            "seed",
        },
    )
    defaults = PaymentsConfig()
    secret_key = reader.string(data.get("secret_key", defaults.secret_key), "payments.secret_key")
    if not secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise reader.fail("payments.secret_key", "expected a Stripe secret key like 'sk_test_...'")
    fee_percent = reader.number(data.get("fee_percent", 2.9), "payments.fee_percent", 0)
    if fee_percent > 100:
        raise reader.fail("payments.fee_percent", f"must be <= 100, got {fee_percent}")
    exclude = []
    for index, ref in enumerate(
        reader.listing(data.get("exclude_orders"), "payments.exclude_orders")
    ):
        exclude.append(_order_ref(reader, ref, f"payments.exclude_orders[{index}]"))
    gateways = tuple(
        reader.string(gateway, f"payments.gateways[{index}]")
        for index, gateway in enumerate(
            reader.listing(data.get("gateways", list(defaults.gateways)), "payments.gateways")
        )
    )
    payouts: PayoutSchedule | None = defaults.payouts
    if "payouts" in data:
        payouts = None if data["payouts"] is None else _parse_payouts(reader, data["payouts"])
    seed = data.get("seed")
    return PaymentsConfig(
        secret_key=secret_key,
        fee_percent=Decimal(str(fee_percent)),
        fee_fixed=reader.integer(data.get("fee_fixed", 30), "payments.fee_fixed", 0),
        dispute_fee=reader.integer(data.get("dispute_fee", 1500), "payments.dispute_fee", 0),
        available_after_days=reader.integer(
            data.get("available_after_days", 2), "payments.available_after_days", 0
        ),
        gateways=gateways,
        exclude_orders=tuple(exclude),
        disputes=tuple(
            _parse_dispute(reader, entry, f"payments.disputes[{index}]")
            for index, entry in enumerate(reader.listing(data.get("disputes"), "payments.disputes"))
        ),
        payouts=payouts,
        faults=tuple(
            _parse_payments_fault(reader, entry, f"payments.faults[{index}]")
            for index, entry in enumerate(reader.listing(data.get("faults"), "payments.faults"))
        ),
        seed=None if seed is None else reader.integer(seed, "payments.seed"),
    )


def _order_ref(reader: _Reader, value: Any, path: str) -> str | int:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise reader.fail(path, f"expected a story name or an order id, got {value!r}")
    return value


def _parse_payouts(reader: _Reader, raw: Any) -> PayoutSchedule:
    data = reader.mapping(raw, "payments.payouts", {"every", "at_hour_utc", "delay_days"})
    every = reader.duration(data.get("every", "1d"), "payments.payouts.every")
    if every < timedelta(hours=1):
        raise reader.fail("payments.payouts.every", "must be at least 1h")
    at_hour = reader.integer(data.get("at_hour_utc", 0), "payments.payouts.at_hour_utc", 0)
    if at_hour > 23:
        raise reader.fail("payments.payouts.at_hour_utc", f"must be 0..23, got {at_hour}")
    return PayoutSchedule(
        every=every,
        at_hour_utc=at_hour,
        delay_days=reader.integer(data.get("delay_days", 2), "payments.payouts.delay_days", 0),
    )


def _parse_dispute(reader: _Reader, raw: Any, path: str) -> DisputeSpec:
    data = reader.mapping(
        raw, path, {"order", "opened_at", "reason", "outcome", "closed_at", "responded_at"}
    )
    for key in ("order", "opened_at"):
        if key not in data:
            raise reader.fail(f"{path}.{key}", "required for a dispute")
    reason = data.get("reason", "fraudulent")
    if reason not in DISPUTE_REASONS:
        raise reader.fail(
            f"{path}.reason", f"unknown reason {reason!r} (one of {', '.join(DISPUTE_REASONS)})"
        )
    outcome = data.get("outcome", "open")
    if outcome not in DISPUTE_OUTCOMES:
        raise reader.fail(
            f"{path}.outcome", f"unknown outcome {outcome!r} (one of {', '.join(DISPUTE_OUTCOMES)})"
        )
    opened_at = reader.time(data["opened_at"], f"{path}.opened_at")
    closed_at = None
    if outcome == "open":
        if data.get("closed_at") is not None:
            raise reader.fail(f"{path}.closed_at", "an open dispute has no closed_at")
    else:
        if data.get("closed_at") is None:
            raise reader.fail(f"{path}.closed_at", f"required when outcome is {outcome!r}")
        closed_at = reader.time(data["closed_at"], f"{path}.closed_at")
        if closed_at <= opened_at:
            raise reader.fail(f"{path}.closed_at", "must be after opened_at")
    responded_at = None
    if data.get("responded_at") is not None:
        responded_at = reader.time(data["responded_at"], f"{path}.responded_at")
        if responded_at < opened_at or (closed_at is not None and responded_at > closed_at):
            raise reader.fail(f"{path}.responded_at", "must be between opened_at and closed_at")
    return DisputeSpec(
        order=_order_ref(reader, data["order"], f"{path}.order"),
        opened_at=opened_at,
        reason=str(reason),
        outcome=str(outcome),
        closed_at=closed_at,
        responded_at=responded_at,
    )


def _parse_payments_fault(reader: _Reader, raw: Any, path: str) -> Fault:
    data = reader.mapping(raw, path)
    kind = data.get("kind")
    if kind not in PAYMENTS_FAULT_KINDS:
        raise reader.fail(
            f"{path}.kind",
            f"unknown payments fault kind {kind!r} (expected one of: {', '.join(PAYMENTS_FAULT_KINDS)})",
        )
    required, optional = PAYMENTS_FAULT_KINDS[kind]
    reader.mapping(data, path, required | optional | {"kind"})
    for key in sorted(required):
        if key not in data:
            raise reader.fail(f"{path}.{key}", f"required for a '{kind}' fault")
    return Fault(
        kind=kind,
        after_requests=reader.integer(data["after_requests"], f"{path}.after_requests", 0),
        count=reader.integer(data.get("count", 1), f"{path}.count", 1),
    )
