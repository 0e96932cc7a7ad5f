"""Three-way reconciliation: what the storefront says each order is worth, what the payment provider
charged and refunded for it, and whether that money has reached a payout.

Every difference is classified by a rule and carries its amount. A rule either explains a difference
(fees, a partial refund on both sides, a dispute, money not yet paid out, rounding) or names it as
something a person must look at (missing on one side, amount mismatch). Pure: no Dagster, no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PAID_STATUSES = frozenset({"paid", "partially_paid", "partially_refunded", "refunded"})

RULES_EXPLAINED = (
    "paid_outside_provider",
    "matched",
    "no_payment_expected",
    "fee",
    "partial_refund",
    "full_refund",
    "dispute",
    "not_yet_settled",
    "rounding",
)
RULES_UNEXPLAINED = (
    "status_mismatch",
    "missing_on_provider",
    "missing_on_storefront",
    "storefront_record_quarantined",
    "amount_mismatch",
)


@dataclass(frozen=True)
class OrderMoney:
    """The storefront's side: the order's current total and what it says was refunded."""

    order_id: int
    currency: str
    total_minor: int
    refunded_minor: int
    financial_status: str | None
    cancelled: bool = False
    gateway: str | None = None


@dataclass(frozen=True)
class ProviderMoney:
    """The payment provider's side for one order (charges carry the order id in their metadata)."""

    order_id: int
    currency: str
    charged_minor: int
    refunded_minor: int
    fees_minor: int = 0
    disputed_lost_minor: int = 0
    unsettled_net_minor: int = 0


@dataclass(frozen=True)
class Difference:
    order_id: int
    rule: str
    amount_minor: int
    currency: str
    detail: str

    @property
    def explained(self) -> bool:
        return self.rule in RULES_EXPLAINED


@dataclass
class ReconciliationResult:
    differences: list[Difference] = field(default_factory=list)

    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if not d.explained]

    def totals_by_rule(self) -> dict[str, dict[str, int]]:
        """{rule: {"count": n, "<currency>_minor": amount}} for reports and metadata."""
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for difference in self.differences:
            totals[difference.rule]["count"] += 1
            totals[difference.rule][f"{difference.currency.lower()}_minor"] += (
                difference.amount_minor
            )
        return {rule: dict(values) for rule, values in sorted(totals.items())}

    def unexplained_minor(self) -> int:
        return sum(abs(d.amount_minor) for d in self.unexplained())


def _reconcile_pair(
    order: OrderMoney, provider: ProviderMoney, tolerance_minor: int, quarantined: bool = False
) -> list[Difference]:
    currency = order.currency.upper()
    found: list[Difference] = []
    if provider.charged_minor and order.financial_status not in PAID_STATUSES:
        # The provider took money for an order the storefront (as we hold it) does not call paid.
        net = provider.charged_minor - provider.refunded_minor
        if quarantined:
            return [
                Difference(
                    order.order_id,
                    "storefront_record_quarantined",
                    net,
                    currency,
                    f"charged, but the storefront's paid version is in ops.quarantine (core still says "
                    f"{order.financial_status}): fix it at the source",
                )
            ]
        return [
            Difference(
                order.order_id,
                "status_mismatch",
                net,
                currency,
                f"the provider charged {provider.charged_minor}; the storefront says {order.financial_status}",
            )
        ]
    if order.currency.upper() != provider.currency.upper():
        return [
            Difference(
                order.order_id,
                "amount_mismatch",
                order.total_minor - provider.charged_minor,
                currency,
                f"currencies differ: storefront {order.currency}, provider {provider.currency}",
            )
        ]
    order_net = order.total_minor - order.refunded_minor
    provider_net = provider.charged_minor - provider.refunded_minor
    difference = order_net - provider_net
    if order.refunded_minor and order.refunded_minor == provider.refunded_minor:
        found.append(
            Difference(
                order.order_id,
                "partial_refund" if order_net else "full_refund",
                order.refunded_minor,
                currency,
                "refunded on both sides",
            )
        )
    if provider.fees_minor:
        found.append(
            Difference(
                order.order_id,
                "fee",
                -provider.fees_minor,
                currency,
                "provider fees netted from the payout",
            )
        )
    if provider.disputed_lost_minor:
        found.append(
            Difference(
                order.order_id,
                "dispute",
                -provider.disputed_lost_minor,
                currency,
                "charge disputed and lost: withdrawn from the balance",
            )
        )
    if provider.unsettled_net_minor:
        found.append(
            Difference(
                order.order_id,
                "not_yet_settled",
                provider.unsettled_net_minor,
                currency,
                "charged but not in a paid payout yet",
            )
        )
    if difference == 0:
        found.append(
            Difference(order.order_id, "matched", 0, currency, "storefront net equals provider net")
        )
    elif abs(difference) <= tolerance_minor:
        found.append(
            Difference(
                order.order_id,
                "rounding",
                difference,
                currency,
                f"within {tolerance_minor} minor unit(s)",
            )
        )
    else:
        found.append(
            Difference(
                order.order_id,
                "amount_mismatch",
                difference,
                currency,
                f"storefront net {order_net} vs provider net {provider_net} "
                f"(charged {provider.charged_minor}, refunded {provider.refunded_minor} at the provider; "
                f"total {order.total_minor}, refunded {order.refunded_minor} at the storefront)",
            )
        )
    return found


def reconcile(
    orders: Iterable[OrderMoney],
    provider: Iterable[ProviderMoney],
    tolerance_minor: int = 1,
    provider_gateways: frozenset[str] | None = None,
    quarantined_orders: frozenset[int] = frozenset(),
) -> ReconciliationResult:
    """Classify every order and every provider record; each id appears in the result at least once.

    `provider_gateways`: the storefront gateways whose payments settle through this provider; an
    order paid through another gateway is not expected at the provider. `quarantined_orders`: ids the
    storefront sent but staging quarantined, so that a charge for one is named for what it is.
    """
    by_order: Mapping[int, OrderMoney] = {o.order_id: o for o in orders}
    by_provider: Mapping[int, ProviderMoney] = {p.order_id: p for p in provider}
    result = ReconciliationResult()
    for order_id in sorted(set(by_order) | set(by_provider)):
        order, money = by_order.get(order_id), by_provider.get(order_id)
        if order is not None and money is not None:
            result.differences.extend(
                _reconcile_pair(order, money, tolerance_minor, order_id in quarantined_orders)
            )
        elif order is not None:
            outside = (
                provider_gateways is not None and (order.gateway or "") not in provider_gateways
            )
            if order.financial_status in PAID_STATUSES and outside:
                result.differences.append(
                    Difference(
                        order_id,
                        "paid_outside_provider",
                        0,
                        order.currency.upper(),
                        f"paid through gateway {order.gateway!r}, not settled by this provider",
                    )
                )
            elif order.financial_status in PAID_STATUSES:
                net = order.total_minor - order.refunded_minor
                result.differences.append(
                    Difference(
                        order_id,
                        "missing_on_provider",
                        net,
                        order.currency.upper(),
                        f"storefront says {order.financial_status}, the provider has no charge",
                    )
                )
            else:
                result.differences.append(
                    Difference(
                        order_id,
                        "no_payment_expected",
                        0,
                        order.currency.upper(),
                        f"financial status {order.financial_status}",
                    )
                )
        else:
            net = money.charged_minor - money.refunded_minor
            rule, detail = (
                (
                    "storefront_record_quarantined",
                    "charged, but the storefront's record is in ops.quarantine: fix it at the source",
                )
                if order_id in quarantined_orders
                else (
                    "missing_on_storefront",
                    "the provider charged an order the storefront does not have",
                )
            )
            result.differences.append(
                Difference(order_id, rule, net, money.currency.upper(), detail)
            )
    return result
