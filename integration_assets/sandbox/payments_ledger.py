"""The payment provider's side of a scenario: the Stripe objects that exist at any scenario time.

Pure state, no HTTP. Every order story is replayed (the same replay the storefront serves from)
and each change in what the shop has collected becomes money at Stripe:

* a `paid` event (a `sale` or `capture` transaction) -> a charge for the amount taken;
* an edit that raises the total of a paid order -> an extra charge for the difference;
  one that lowers it -> a refund for the difference;
* a `refunded` event -> a refund for the amount Shopify refunded;
* `payments.disputes` -> a dispute and its balance transactions (withdrawal + fee, reversal if won);
* `payments.payouts` -> automatic payouts of everything available and not yet paid out.

Everything is built once, at start-up, as records with the time they happen; serving time T only
filters by `created <= T` and derives the few time-dependent fields (balance transaction and payout
status, a charge's refunded amount, a dispute's status). Snapshots are cached per second of T.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from integration_assets.sandbox.scenario import OrderStory, Scenario
from integration_assets.sandbox.storefront_orders import OrderBook, StoryError, _OrderState

RESOURCES = ("charges", "refunds", "balance_transactions", "disputes", "payouts", "events")
OBJECT_NAMES = {
    "charges": "charge",
    "refunds": "refund",
    "balance_transactions": "balance_transaction",
    "disputes": "dispute",
    "payouts": "payout",
    "events": "event",
}
STRIPE_API_VERSION = "2025-10-29.clover"
FULLY_PAID = ("paid", "partially_refunded", "refunded")
PAYOUT_PENDING_FOR = timedelta(hours=1)
DISPUTE_EVIDENCE_DAYS = 7
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)) or "0"


def stripe_id(prefix: str, seed: int, *parts: Any) -> str:
    """`ch_` + 24 base62 characters of a seeded hash: the same scenario gives the same ids."""
    digest = hashlib.sha256("|".join(str(part) for part in (seed, prefix, *parts)).encode())
    return f"{prefix}_{base62(digest.digest())[:24]}"


def minor(amount: Decimal) -> int:
    """A two-decimal major-unit amount -> integer minor units (every currency treated as 2-decimal)."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


# ---- records: what happens, when ------------------------------------------------------------
@dataclass
class _Txn:
    id: str
    amount: int
    fee: int
    fee_description: str | None
    currency: str
    created: int
    available_on: int
    type: str
    reporting_category: str
    source: str
    description: str
    payout: str | None = None  # the payout that paid it out (assigned when payouts are computed)

    @property
    def net(self) -> int:
        return self.amount - self.fee

    def render(self, now: int) -> dict[str, Any]:
        fee_details = []
        if self.fee:
            fee_details.append(
                {
                    "amount": self.fee,
                    "application": None,
                    "currency": self.currency,
                    "description": self.fee_description,
                    "type": "stripe_fee",
                }
            )
        return {
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": self.available_on,
            "balance_type": "payments",
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "exchange_rate": None,
            "fee": self.fee,
            "fee_details": fee_details,
            "net": self.net,
            "reporting_category": self.reporting_category,
            "source": self.source,
            "status": "available" if self.available_on <= now else "pending",
            "type": self.type,
        }


@dataclass
class _Charge:
    id: str
    order_id: int
    order_name: str
    amount: int
    currency: str
    created: int
    txn: str
    email: str
    cause: str  # "payment" or "order_edit"
    shopify_transaction_id: int | None

    @property
    def description(self) -> str:
        return f"Shopify order {self.order_name}"

    def metadata(self) -> dict[str, str]:
        data = {
            "shopify_order_id": str(self.order_id),
            "order_name": self.order_name,
            "cause": self.cause,
        }
        if self.shopify_transaction_id is not None:
            data["shopify_transaction_id"] = str(self.shopify_transaction_id)
        return data


@dataclass
class _Refund:
    id: str
    charge: str
    order_id: int
    order_name: str
    amount: int
    currency: str
    created: int
    txn: str
    cause: str  # "refund" or "order_edit"
    shopify_refund_id: int | None

    def metadata(self) -> dict[str, str]:
        data = {
            "shopify_order_id": str(self.order_id),
            "order_name": self.order_name,
            "cause": self.cause,
        }
        if self.shopify_refund_id is not None:
            data["shopify_refund_id"] = str(self.shopify_refund_id)
        return data

    def render(self, now: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.txn,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "metadata": self.metadata(),
            "payment_intent": None,
            "reason": "requested_by_customer",
            "receipt_number": None,
            "status": "succeeded",
        }


@dataclass
class _Dispute:
    id: str
    charge: _Charge
    amount: int
    currency: str
    created: int
    reason: str
    outcome: str
    closed_at: int | None
    responded_at: int | None
    txns: list[_Txn] = field(default_factory=list)

    def status(self, now: int) -> str:
        if self.closed_at is not None and self.closed_at <= now:
            return self.outcome
        if self.responded_at is not None and self.responded_at <= now:
            return "under_review"
        return "needs_response"

    def render(self, now: int) -> dict[str, Any]:
        status = self.status(now)
        due_by = self.created + DISPUTE_EVIDENCE_DAYS * 86400
        return {
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": [txn.render(now) for txn in self.txns if txn.created <= now],
            "charge": self.charge.id,
            "created": self.created,
            "currency": self.currency,
            "evidence_details": {
                "due_by": due_by,
                "has_evidence": self.responded_at is not None and self.responded_at <= now,
                "past_due": status == "needs_response" and now > due_by,
                "submission_count": 1
                if self.responded_at is not None and self.responded_at <= now
                else 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {
                "shopify_order_id": str(self.charge.order_id),
                "order_name": self.charge.order_name,
            },
            "payment_intent": None,
            "reason": self.reason,
            "status": status,
        }


@dataclass
class _Payout:
    id: str
    amount: int
    currency: str
    created: int
    arrival_date: int
    txn: str
    paid_out: list[_Txn]

    def status(self, now: int) -> str:
        if now >= self.arrival_date:
            return "paid"
        if now < self.created + int(PAYOUT_PENDING_FOR.total_seconds()):
            return "pending"
        return "in_transit"

    def render(self, now: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payout",
            "amount": self.amount,
            "arrival_date": self.arrival_date,
            "automatic": True,
            "balance_transaction": self.txn,
            "created": self.created,
            "currency": self.currency,
            "description": "STRIPE PAYOUT",
            "destination": "ba_sandbox_bank_account",
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "reconciliation_status": "completed",
            "source_type": "card",
            "statement_descriptor": None,
            "status": self.status(now),
            "type": "bank_account",
        }


class _RenderedOnce(Mapping[str, Any]):
    """Per resource, what `make(resource)` gives, made on first use: a poll reads some resources of a
    snapshot, and rendering a peak day's every object at each new clock is seconds."""

    def __init__(self, keys: Sequence[str], make: Callable[[str], Any]) -> None:
        self._keys = tuple(keys)
        self._make = make
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        with self._lock:
            if key not in self._made:
                self._made[key] = self._make(key)
            return self._made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class PaymentsSnapshot:
    """Every Stripe object that exists at one time: per resource, newest first, and by id (each
    resource rendered when first read)."""

    at: int
    lists: Mapping[str, list[dict[str, Any]]]
    by_id: Mapping[str, dict[str, dict[str, Any]]]
    payout_members: dict[str, frozenset[str]]  # payout id -> its balance transactions' ids


class _RecordingOrderBook(OrderBook):
    """The storefront's own OrderBook, remembering which story became which order id and number."""

    def __init__(self, scenario: Scenario) -> None:
        self.replayed: list[tuple[OrderStory, int, int, str]] = []
        super().__init__(scenario)

    def _replay(self, story: OrderStory, order_id: int, number: int, path: str) -> Any:
        self.replayed.append((story, order_id, number, path))
        return super()._replay(story, order_id, number, path)


class PaymentsLedger:
    """The Stripe account of a scenario's shop, as it stands at any scenario time."""

    SNAPSHOT_CACHE_SIZE = 8

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.config = scenario.payments
        self.seed = scenario.seed if self.config.seed is None else self.config.seed
        # The storefront's own replay; `start_sandbox_systems` serves the storefront from it too.
        self.order_book: _RecordingOrderBook = _RecordingOrderBook(scenario)
        self.charges: list[_Charge] = []
        self.refunds: list[_Refund] = []
        self.txns: list[_Txn] = []
        self.disputes: list[_Dispute] = []
        self.payouts: list[_Payout] = []
        self.charges_by_order: dict[int, list[_Charge]] = defaultdict(list)
        self.refunded_by_charge: dict[str, int] = defaultdict(int)  # running total, not a rescan
        self.excluded_order_ids: set[int] = set()
        self.order_ids_by_label = dict(self.order_book.ids_by_label)
        self._snapshots: OrderedDict[int, PaymentsSnapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] | None = None  # every charge event, made once
        self._event_times: list[int] = []
        self._build()

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    # ---- construction ------------------------------------------------------------------------
    def _resolve(self, ref: str | int, path: str) -> int:
        if isinstance(ref, str) and ref in self.order_ids_by_label:
            return self.order_ids_by_label[ref]
        known_ids = {order_id for _, order_id, _, _ in self.order_book.replayed}
        candidate = ref
        if isinstance(ref, str) and ref.isdigit():
            candidate = int(ref)
        if isinstance(candidate, int) and candidate in known_ids:
            return candidate
        names = ", ".join(sorted(self.order_ids_by_label)) or "none"
        raise StoryError(
            path, f"unknown order {ref!r} (use a story name or an order id; stories: {names})"
        )

    def _build(self) -> None:
        replayed: list[tuple[OrderStory, int, int, str]] = self.order_book.replayed
        for index, ref in enumerate(self.config.exclude_orders):
            self.excluded_order_ids.add(self._resolve(ref, f"payments.exclude_orders[{index}]"))
        for story, order_id, number, path in replayed:
            self._replay_money(story, order_id, number, path)
        for index, spec in enumerate(self.config.disputes):
            self._add_dispute(spec, index)
        self._add_payouts()
        # The stories were needed for the build only; a big scenario's generated ones are many.
        self.order_book.replayed = []

    def _fee(self, amount: int) -> int:
        percent = (Decimal(amount) * self.config.fee_percent / 100).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return int(percent) + self.config.fee_fixed

    def _available_on(self, created: int) -> int:
        return created + self.config.available_after_days * 86400

    def _replay_money(self, story: OrderStory, order_id: int, number: int, path: str) -> None:
        if order_id in self.excluded_order_ids:
            return
        state = _OrderState(
            order_id=order_id,
            order_number=number,
            story=story,
            scenario=self.scenario,
            tz=self.scenario.shop.tz,
            currency=story.currency or self.scenario.shop.currency,
        )
        currency = state.currency.lower()
        order_name = f"#{number}"
        collected = 0  # net at Stripe for this order: charges - refunds
        ordered = sorted(enumerate(story.events), key=lambda pair: pair[1].at)
        for index, event in ordered:
            seen_transactions = len(state.transactions)
            seen_refunds = len(state.refunds)
            state.apply(event, f"{path}.events[{index}]")
            paying = [t for t in state.transactions if t["kind"] in ("sale", "capture")]
            if paying and paying[0]["gateway"] not in self.config.gateways:
                # Paid through another gateway: this order never reaches Stripe (and nothing was
                # charged before its first payment, so there is nothing to take back).
                self.excluded_order_ids.add(order_id)
                return
            target = self._target(state)
            delta = target - collected
            if delta == 0:
                continue
            at = unix(event.at)
            new_transactions = state.transactions[seen_transactions:]
            if delta > 0:
                sale = next((t for t in new_transactions if t["kind"] in ("sale", "capture")), None)
                self._add_charge(
                    order_id,
                    order_name,
                    delta,
                    currency,
                    at,
                    state.email,
                    "payment" if sale else "order_edit",
                    sale["id"] if sale else None,
                )
            else:
                shopify_refund = state.refunds[-1] if len(state.refunds) > seen_refunds else None
                self._add_refunds(
                    order_id,
                    order_name,
                    -delta,
                    currency,
                    at,
                    "refund" if shopify_refund else "order_edit",
                    shopify_refund["id"] if shopify_refund else None,
                    f"{path}.events[{index}]",
                )
            collected = target

    @staticmethod
    def _target(state: _OrderState) -> int:
        """What Stripe should hold for the order: the total once fully paid, else what was taken."""
        fully_paid = state.financial_status in FULLY_PAID
        basis = state.totals().total if fully_paid else state.paid_amount
        return max(0, minor(basis - state.refunded_amount))

    def _add_charge(
        self,
        order_id: int,
        order_name: str,
        amount: int,
        currency: str,
        at: int,
        email: str,
        cause: str,
        shopify_transaction_id: int | None,
    ) -> None:
        sequence = len(self.charges_by_order[order_id])
        charge_id = stripe_id("ch", self.seed, order_id, sequence)
        txn = _Txn(
            id=stripe_id("txn", self.seed, charge_id),
            amount=amount,
            fee=self._fee(amount),
            fee_description="Stripe processing fees",
            currency=currency,
            created=at,
            available_on=self._available_on(at),
            type="charge",
            reporting_category="charge",
            source=charge_id,
            description=f"Shopify order {order_name}",
        )
        charge = _Charge(
            id=charge_id,
            order_id=order_id,
            order_name=order_name,
            amount=amount,
            currency=currency,
            created=at,
            txn=txn.id,
            email=email,
            cause=cause,
            shopify_transaction_id=shopify_transaction_id,
        )
        self.charges.append(charge)
        self.charges_by_order[order_id].append(charge)
        self.txns.append(txn)

    def _refundable(self, charge: _Charge) -> int:
        return charge.amount - self.refunded_by_charge[charge.id]

    def _add_refunds(
        self,
        order_id: int,
        order_name: str,
        amount: int,
        currency: str,
        at: int,
        cause: str,
        shopify_refund_id: int | None,
        path: str,
    ) -> None:
        """Refund `amount` against the order's charges, newest first (one refund per charge)."""
        remaining = amount
        for charge in reversed(self.charges_by_order[order_id]):
            if remaining == 0:
                break
            part = min(remaining, self._refundable(charge))
            if part <= 0:
                continue
            refund_id = stripe_id("re", self.seed, order_id, len(self.refunds), charge.id)
            txn = _Txn(
                id=stripe_id("txn", self.seed, refund_id),
                amount=-part,
                fee=0,
                fee_description=None,
                currency=currency,
                created=at,
                available_on=at,
                type="refund",
                reporting_category="refund",
                source=refund_id,
                description=f"REFUND FOR CHARGE (Shopify order {order_name})",
            )
            self.refunds.append(
                _Refund(
                    id=refund_id,
                    charge=charge.id,
                    order_id=order_id,
                    order_name=order_name,
                    amount=part,
                    currency=currency,
                    created=at,
                    txn=txn.id,
                    cause=cause,
                    shopify_refund_id=shopify_refund_id,
                )
            )
            self.refunded_by_charge[charge.id] += part
            self.txns.append(txn)
            remaining -= part
        if remaining:
            raise StoryError(path, f"refunds {remaining} more than the order's charges hold")

    def _add_dispute(self, spec: Any, index: int) -> None:
        path = f"payments.disputes[{index}]"
        order_id = self._resolve(spec.order, f"{path}.order")
        if order_id in self.excluded_order_ids:
            raise StoryError(f"{path}.order", f"order {spec.order!r} is not paid through Stripe")
        charges = self.charges_by_order.get(order_id) or []
        if not charges:
            raise StoryError(f"{path}.order", f"order {spec.order!r} is never charged")
        charge = charges[0]
        opened = unix(spec.opened_at)
        if opened < charge.created:
            raise StoryError(
                f"{path}.opened_at",
                f"the dispute opens before the charge exists ({spec.opened_at.isoformat()} < "
                f"{datetime.fromtimestamp(charge.created, UTC).isoformat()})",
            )
        if any(dispute.charge.id == charge.id for dispute in self.disputes):
            raise StoryError(f"{path}.order", f"order {spec.order!r} already has a dispute")
        refunded = sum(
            r.amount for r in self.refunds if r.charge == charge.id and r.created <= opened
        )
        amount = charge.amount - refunded
        if amount <= 0:
            raise StoryError(f"{path}.order", "the charge is fully refunded; nothing to dispute")
        dispute_id = stripe_id("dp", self.seed, charge.id)
        dispute = _Dispute(
            id=dispute_id,
            charge=charge,
            amount=amount,
            currency=charge.currency,
            created=opened,
            reason=spec.reason,
            outcome=spec.outcome,
            closed_at=None if spec.closed_at is None else unix(spec.closed_at),
            responded_at=None if spec.responded_at is None else unix(spec.responded_at),
        )
        withdrawal = _Txn(
            id=stripe_id("txn", self.seed, dispute_id, "withdrawal"),
            amount=-amount,
            fee=self.config.dispute_fee,
            fee_description="Dispute fee",
            currency=charge.currency,
            created=opened,
            available_on=opened,
            type="adjustment",
            reporting_category="dispute",
            source=dispute_id,
            description=f"Chargeback withdrawal for {charge.id}",
        )
        dispute.txns.append(withdrawal)
        self.txns.append(withdrawal)
        if spec.outcome == "won" and dispute.closed_at is not None:
            reversal = _Txn(
                id=stripe_id("txn", self.seed, dispute_id, "reversal"),
                amount=amount,
                fee=0,
                fee_description=None,
                currency=charge.currency,
                created=dispute.closed_at,
                available_on=dispute.closed_at,
                type="adjustment",
                reporting_category="dispute_reversal",
                source=dispute_id,
                description=f"Chargeback reversal for {charge.id}",
            )
            dispute.txns.append(reversal)
            self.txns.append(reversal)
        self.disputes.append(dispute)

    def payout_times(self) -> list[int]:
        """Every scheduled payout time from the first money movement until all is paid out."""
        schedule = self.config.payouts
        if schedule is None or not self.txns:
            return []
        every = int(schedule.every.total_seconds())
        earliest = min(min(txn.created for txn in self.txns), unix(self.scenario.clock.start))
        horizon = max(txn.available_on for txn in self.txns) + every
        day = datetime.fromtimestamp(earliest, UTC).replace(hour=0, minute=0, second=0)
        anchor = unix(day) + schedule.at_hour_utc * 3600
        while anchor > earliest:
            anchor -= every
        times = []
        moment = anchor + every
        while moment <= horizon:
            times.append(moment)
            moment += every
        return times

    def _add_payouts(self) -> None:
        schedule = self.config.payouts
        if schedule is None:
            return
        unpaid = sorted(self.txns, key=lambda txn: (txn.available_on, txn.created, txn.id))
        for moment in self.payout_times():
            by_currency: dict[str, list[_Txn]] = defaultdict(list)
            for txn in unpaid:
                if txn.payout is None and txn.available_on <= moment:
                    by_currency[txn.currency].append(txn)
            for currency in sorted(by_currency):
                members = by_currency[currency]
                amount = sum(txn.net for txn in members)
                if amount <= 0:
                    continue  # a payout never goes negative: the balance waits for more sales
                payout_id = stripe_id("po", self.seed, currency, moment)
                txn = _Txn(
                    id=stripe_id("txn", self.seed, payout_id),
                    amount=-amount,
                    fee=0,
                    fee_description=None,
                    currency=currency,
                    created=moment,
                    available_on=moment,
                    type="payout",
                    reporting_category="payout",
                    source=payout_id,
                    description="STRIPE PAYOUT",
                    payout=payout_id,
                )
                for member in members:
                    member.payout = payout_id
                self.payouts.append(
                    _Payout(
                        id=payout_id,
                        amount=amount,
                        currency=currency,
                        created=moment,
                        arrival_date=moment + schedule.delay_days * 86400,
                        txn=txn.id,
                        paid_out=members,
                    )
                )
                self.txns.append(txn)

    # ---- queries -------------------------------------------------------------------------------
    def snapshot(self, moment: datetime) -> PaymentsSnapshot:
        """Every object that exists at `moment` (created <= moment), as Stripe would serve it."""
        now = unix(moment)
        with self._lock:
            cached = self._snapshots.get(now)
            if cached is not None:
                self._snapshots.move_to_end(now)
                return cached
        snapshot = self._render(now)
        with self._lock:
            self._snapshots[now] = snapshot
            while len(self._snapshots) > self.SNAPSHOT_CACHE_SIZE:
                self._snapshots.popitem(last=False)
        return snapshot

    def _all_charge_events(self) -> list[dict[str, Any]]:
        """Every charge event of the scenario, oldest first, made once: `charge.succeeded` when a
        charge is made and `charge.refunded` at each of its refunds, each with the charge as it stood
        then (amount refunded so far, disputed or not). An event never changes once it happened, so
        each clock's list is a prefix of this one (a peak day re-made them in seconds per clock)."""
        with self._lock:
            if self._events is not None:
                return self._events
        disputed_at = {dispute.charge.id: dispute.created for dispute in self.disputes}
        charges = {charge.id: charge for charge in self.charges}
        never = float("inf")
        events = [
            _event(
                stripe_id("evt", self.seed, "charge.succeeded", charge.id),
                "charge.succeeded",
                charge.created,
                _render_charge(charge, 0, disputed_at.get(charge.id, never) <= charge.created),
            )
            for charge in self.charges
        ]
        refunded: dict[str, int] = defaultdict(int)
        for refund in sorted(self.refunds, key=lambda r: (r.created, r.id)):
            charge = charges.get(refund.charge)
            if charge is None:
                continue
            refunded[charge.id] += refund.amount
            disputed = disputed_at.get(charge.id, never) <= refund.created
            events.append(
                _event(
                    stripe_id("evt", self.seed, "charge.refunded", refund.id),
                    "charge.refunded",
                    refund.created,
                    _render_charge(charge, refunded[charge.id], disputed),
                )
            )
        events.sort(key=lambda event: (event["created"], event["id"]))
        with self._lock:
            self._events = events
            self._event_times = [event["created"] for event in events]
        return events

    def _charge_events(self, now: int) -> list[dict[str, Any]]:
        """The charge events that happened until `now`."""
        events = self._all_charge_events()
        return events[: bisect.bisect_right(self._event_times, now)]

    def _render(self, now: int) -> PaymentsSnapshot:
        refunds = [refund for refund in self.refunds if refund.created <= now]
        disputes = [dispute for dispute in self.disputes if dispute.created <= now]

        def charges() -> list[dict[str, Any]]:
            refunded: dict[str, int] = defaultdict(int)
            for refund in refunds:
                refunded[refund.charge] += refund.amount
            disputed = {dispute.charge.id for dispute in disputes}
            return [
                _render_charge(charge, refunded[charge.id], charge.id in disputed)
                for charge in self.charges
                if charge.created <= now
            ]

        render: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "charges": charges,
            "events": lambda: self._charge_events(now),
            "refunds": lambda: [refund.render(now) for refund in refunds],
            "balance_transactions": lambda: [
                txn.render(now) for txn in self.txns if txn.created <= now
            ],
            "disputes": lambda: [dispute.render(now) for dispute in disputes],
            "payouts": lambda: [
                payout.render(now) for payout in self.payouts if payout.created <= now
            ],
        }

        def newest_first(resource: str) -> list[dict[str, Any]]:
            objects = render[resource]()
            objects.sort(key=lambda obj: (obj["created"], obj["id"]), reverse=True)
            return objects

        lists = _RenderedOnce(RESOURCES, newest_first)
        return PaymentsSnapshot(
            at=now,
            lists=lists,
            by_id=_RenderedOnce(
                RESOURCES, lambda resource: {obj["id"]: obj for obj in lists[resource]}
            ),
            payout_members={
                payout.id: frozenset(txn.id for txn in payout.paid_out)
                for payout in self.payouts
                if payout.created <= now
            },
        )


def _event(event_id: str, event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event as `GET /v1/events` lists it: `data.object` is the object as it was then."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def _render_charge(charge: _Charge, amount_refunded: int, disputed: bool) -> dict[str, Any]:
    return {
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount,
        "amount_refunded": amount_refunded,
        "balance_transaction": charge.txn,
        "captured": True,
        "created": charge.created,
        "currency": charge.currency,
        "customer": None,
        "description": charge.description,
        "disputed": disputed,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": charge.metadata(),
        "paid": True,
        "payment_intent": None,
        "receipt_email": charge.email,
        "refunded": amount_refunded >= charge.amount,
        "status": "succeeded",
    }
