"""The text of `integration-assets explain`: for a person, grouped, chronological, under 100 columns."""

from __future__ import annotations

import textwrap
from typing import Any

from integration_assets.explain.timeline import money
from integration_assets.streams.inventory_ledger import NAMED_SHORT_ORDERS, short_orders_text

WIDTH = 100


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _wrapped(text: str, indent: str) -> list[str]:
    """A long line folded under its own indent instead of cut (messages are worth reading whole)."""
    return textwrap.wrap(
        text, WIDTH, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False
    ) or [text]


def _at(value: str | None) -> str:
    return (value or "?").replace("T", " ").removesuffix("Z")[:16]


def _timeline(lines: list[str], timeline: list[dict[str, Any]]) -> None:
    lines.append("Timeline (UTC, each system's own clock; ref = the raw record it came from):")
    if not timeline:
        lines.append("  (nothing)")
    for entry in timeline:
        lines.append(_clip(f"  {_at(entry['at'])}  {entry['system']:<10} {entry['summary']}"))
        if entry["ref"]:
            lines.append(_clip(f"  {'':16}  {'':10} ref {entry['ref']}"))


def _knowledge(lines: list[str], known: list[dict[str, Any]]) -> None:
    lines.append("What each system knew, and since when:")
    if not known:
        lines.append("  (nothing)")
    for item in known:
        parts = item["state"].split("; ")
        lines.append(_clip(f"  {item['system']:<10} since {_at(item['as_of'])}: {parts[0]}"))
        lines.extend(_clip(f"  {'':<10} {'':<22}{part}") for part in parts[1:])


def _writes(lines: list[str], writes: list[dict[str, Any]]) -> None:
    lines.append("What was sent where (ops.outbox, with the HTTP exchanges in ops.audit_log):")
    if not writes:
        lines.append("  (nothing)")
    for write in writes:
        outcome = write["status"]
        if write["status"] == "sent":
            outcome += f" as {write['target_record_id']}" if write["target_record_id"] else ""
        elif write["error_class"]:
            outcome += f" ({write['error_class']}: {write['target_message']})"
        elif write["approval_rule"]:
            outcome += f" ({write['approval_rule']})"
        lines.append(
            _clip(
                f"  {write['target']}/{write['entity']} {write['external_id']}: {outcome},"
                f" {write['attempts']} attempt(s)"
            )
        )
        for exchange in write["exchanges"]:
            lines.append(
                _clip(
                    f"      {_at(exchange['occurred_at'])} {exchange['method']} -> {exchange['status']}"
                    f" (attempt {exchange['attempt']})"
                )
            )
        for action in write["operator_actions"]:
            lines.append(
                _clip(
                    f"      {_at(action['acted_at'])} {action['action']} by {action['actor']}: {action['reason'] or ''}"
                )
            )


def _exceptions(lines: list[str], exceptions: list[dict[str, Any]]) -> None:
    lines.append(f"Open exceptions: {len(exceptions) or 'none'}")
    for item in exceptions:
        lines.extend(_wrapped(f"  [{item['kind']}] {item['detail']}", "      "))
        if item["ref"]:
            lines.extend(_wrapped(f"      ref {item['ref']}", "          "))


def render_order(story: dict[str, Any]) -> str:
    current = story["current"] or {}
    currency = current.get("currency")
    lines = [
        f"Order {story['id']} {story['name'] or ''} ({story['email'] or 'no email'},"
        f" customer {story['customer_id'] or '?'})".replace("  ", " ")
    ]
    if current:
        lines.append(
            f"  now: {current['financial_status']}, {current['fulfillment_status'] or 'unfulfilled'},"
            f" total {money(current['total_price_minor'], currency)},"
            f" refunded {money(current['refunded_minor'], currency)}"
        )
    lines.append("")
    lines.append(f"Storefront versions seen: {len(story['storefront_versions'])}")
    for version in story["storefront_versions"]:
        lines.append(
            _clip(
                f"  {_at(version['updated_at'])}  {version['financial_status']}, "
                f"{version['fulfillment_status'] or 'unfulfilled'}, "
                f"total {money(version['total_price_minor'], version['currency'])}"
            )
        )
        lines.append(_clip(f"  {'':16}  ref {version['raw_ref']}"))
    for version in story["quarantined_versions"]:
        lines.append(
            _clip(f"  quarantined: {version['rule']} on {version['field']!r}: {version['message']}")
        )
        lines.append(_clip(f"  {'':16}  ref {version['raw_ref']}"))
    lines.append("")
    _timeline(lines, story["timeline"])
    lines.append("")
    _knowledge(lines, story["knowledge"])
    if story["inventory_moves"]:
        lines.append("")
        lines.append("Inventory moves (core.inventory_ledger):")
        for move in story["inventory_moves"]:
            lines.append(
                _clip(
                    f"  {_at(move['occurred_at'])}  {move['kind']:<16} {move['sku']} x{move['quantity']}"
                    f" at {move['location'] or '-'}  (on hand {move['on_hand_delta']:+d},"
                    f" committed {move['committed_delta']:+d})"
                )
            )
    if story["returns"]:
        lines.append("")
        lines.append("Returns (core.returns):")
        for item in story["returns"]:
            flags = f" [{', '.join(item['flags'])}]" if item["flags"] else ""
            lines.append(
                _clip(
                    f"  {item['return_id']} {item['sku']} x{item['quantity']}: {item['stage']}"
                    f" since {_at(item['stage_entered_at'])}{flags}"
                )
            )
    lines.append("")
    _writes(lines, story["writes"])
    lines.append("")
    rec = story["reconciliation"]
    currency = rec["currency"]
    verdict = "reconciles" if rec["reconciles"] else "DOES NOT reconcile"
    lines.append(f"Reconciliation: {verdict}")
    lines.append(
        f"  storefront net {money(rec['storefront_net_minor'], currency)}"
        f" | provider net {money(rec['provider_net_minor'], currency) if rec['provider_net_minor'] is not None else '-'}"
        f" | ERP invoiced - credited {money(rec['erp_net_minor'], currency) if rec['erp_net_minor'] is not None else '-'}"
    )
    if rec["provider_disputed_minor"]:
        lines.append(
            f"  disputed at the provider: {money(rec['provider_disputed_minor'], currency)}"
        )
    for rule in rec["rules"]:
        mark = "ok " if rule["explained"] else "FOR A PERSON"
        lines.append(
            _clip(
                f"  {mark:<3} {rule['rule']:<28} {money(rule['amount_minor'], rule['currency']):>14}  {rule['detail']}"
            )
        )
    for document in rec["erp_open_documents"]:
        lines.append(f"  ERP document not sent yet: {document}")
    lines.append("")
    _exceptions(lines, story["exceptions"])
    return "\n".join(lines)


def render_customer(story: dict[str, Any]) -> str:
    golden = story["golden"] or {}
    name = " ".join(str(golden[k]) for k in ("first_name", "last_name") if golden.get(k))
    lines = [f"Customer {story['id']} {name} <{golden.get('email') or '?'}>", ""]
    lines.append("Golden record (core.customers), each attribute with the system it came from:")
    for item in story["attributes"]:
        lines.append(_clip(f"  {item['attribute']:<22} {item['system']:<11} {item['value']}"))
    if story["conflicts"]:
        lines.append("Conflicts settled (core.customer_conflicts):")
        for c in story["conflicts"]:
            lines.append(
                _clip(
                    f"  {c['attribute']}: {c['chosen_system']} {c['chosen_value']!r} over"
                    f" {c['overridden_system']} {c['overridden_value']!r} ({c['rule']})"
                )
            )
    lines.append("")
    lines.append(f"Orders: {len(story['orders'])}")
    for order in story["orders"]:
        lines.append(
            _clip(
                f"  {_at(order['created_at'])}  {order['order_id']} {order['name'] or ''}"
                f" {order['financial_status']}, {order['fulfillment_status'] or 'unfulfilled'},"
                f" total {money(order['total_price_minor'], order['currency'])}"
            )
        )
    lines.append("")
    _knowledge(lines, story["knowledge"])
    lines.append("")
    _writes(lines, story["writes"])
    lines.append("")
    _exceptions(lines, story["exceptions"])
    return "\n".join(lines)


def render_sku(story: dict[str, Any]) -> str:
    lines = [f"SKU {story['id']}", ""]
    lines.append("Catalog history (core.product_history):")
    for h in story["product_history"]:
        lines.append(
            _clip(
                f"  {_at(h['valid_from'])} .. {_at(h['valid_to']) if h['valid_to'] else 'now':<16}"
                f" {money(h['price_minor'], h['currency'])}"
                f" {'available' if h['available'] else 'unavailable'} {h['category'] or ''}  {h['raw_ref']}"
            )
        )
    position = story["position"]
    lines.append("")
    if position:
        lines.append(
            f"Position: on hand {position['on_hand']}, committed {position['committed']},"
            f" available {position['available']}, by location {position['on_hand_by_location']}"
        )
    lines.append(f"Inventory moves (core.inventory_ledger): {len(story['inventory_moves'])}")
    for m in story["inventory_moves"]:
        order = f" order {m['order_id']}" if m["order_id"] else ""
        lines.append(
            _clip(
                f"  {_at(m['occurred_at'])}  {m['kind']:<16} x{m['quantity']:<4} at {m['location'] or '-':<8}"
                f" on hand {m['on_hand_delta']:+d}, committed {m['committed_delta']:+d}{order}"
            )
        )
    for o in story["oversells"]:
        until = _at(o["ended_at"]) if o["ended_at"] else "now"
        lines.append(
            f"Oversold {_at(o['started_at'])} .. {until}: available {o['lowest_available']} at lowest,"
            f" {len(o['orders'])} short order(s)"
        )
        named = short_orders_text(
            o["orders"][:NAMED_SHORT_ORDERS], o["channels"][:NAMED_SHORT_ORDERS], len(o["orders"])
        )
        lines.extend(_wrapped(f"  orders {named}", "    "))
    for d in story["drift"]:
        lines.append(
            _clip(
                f"Count at {d['location']} {_at(d['counted_at'])}: counted {d['counted']}, ledger"
                f" {d['ledger_on_hand']} ({d['delta']:+d}): {d['cause']} {d['explanation'] or ''}"
            )
        )
    if story["reservations"]:
        lines.append(f"WMS reservations holding it: {len(story['reservations'])}")
        for r in story["reservations"]:
            lines.append(
                _clip(
                    f"  {r['reservation']} (order {r['order_id']}): x{r['quantity']}, {r['status']}"
                )
            )
    lines.append("")
    _exceptions(lines, story["exceptions"])
    return "\n".join(lines)


def render_text(story: dict[str, Any]) -> str:
    """The text for any explained entity."""
    return {"order": render_order, "customer": render_customer, "sku": render_sku}[story["kind"]](
        story
    )
