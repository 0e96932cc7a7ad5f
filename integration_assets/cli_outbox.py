"""`integration-assets dlq ...` and `integration-assets approvals ...`: the operator's side of the outbox.

Every change is one warehouse transaction that also writes ops.operator_actions (who, when, why).
Changes take effect at the next delivery (the hourly sync, or the `replay_dead_letters` job).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import orjson

from integration_assets.storage import outbox as store

LIST_COLUMNS = ("idempotency_key", "status", "attempts", "error_class", "target_message")


def _warehouse():
    from integration_assets.storage.resources import WarehouseResource

    return WarehouseResource().warehouse()


def _print_rows(rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print(empty)
        return
    for row in rows:
        message = (row.get("target_message") or row.get("approval_rule") or "")[:120]
        print(f"{row['idempotency_key']}  [{row['status']}, {row['attempts']} attempt(s)]")
        print(
            f"    {row['target']}/{row['entity']} {row['external_id']}: {row.get('error_class') or ''} {message}".rstrip()
        )
        if row.get("resolution"):
            print(f"    resolved: {row['resolution']}")


def _parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set billing_address.postal_code=40202` (a JSON value is parsed: numbers, true, null)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        field, separator, text = pair.partition("=")
        if not separator or not field.strip():
            raise store.OutboxError(
                f"--set {pair!r}: expected FIELD=VALUE, e.g. email=ada@example.com"
            )
        try:
            overrides[field.strip()] = orjson.loads(text)
        except orjson.JSONDecodeError:
            overrides[field.strip()] = text
    return overrides


def _cmd_dlq_list(args: argparse.Namespace) -> int:
    with _warehouse().connect() as con:  # applies the schema: ops.outbox may be new
        rows = store.list_rows(
            con,
            status="dead",
            target=args.target,
            entity=args.entity,
            error_class=args.error_class,
            open_only=not args.all,
        )
    _print_rows(rows, args.json, "no open dead letters")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    with _warehouse().connect() as con:  # applies the schema: ops.outbox may be new
        key = store.find_key(con, args.key)
        row = store.get_row(con, key)
        history = store.actions(con, key)
    row["payload"] = orjson.loads(row["payload"])
    row["override"] = orjson.loads(row["override"]) if row["override"] else None
    row["operator_actions"] = history
    print(json.dumps(row, indent=2, default=str))
    return 0


def _cmd_dlq_retry(args: argparse.Namespace) -> int:
    overrides = _parse_overrides(args.set or [])
    with _warehouse().transaction() as con:
        key = store.find_key(con, args.key)
        store.retry(con, key, args.by, args.reason, overrides, args.owner_approved_by)
    edited = f" with {len(overrides)} field edit(s)" if overrides else ""
    if overrides and args.owner_approved_by:
        edited += f" (owner approval by {args.owner_approved_by} recorded)"
    print(
        f"{key} is pending again{edited}; the next delivery sends it (or run the replay_dead_letters job)"
    )
    return 0


def _cmd_dlq_resolve(args: argparse.Namespace) -> int:
    with _warehouse().transaction() as con:
        key = store.find_key(con, args.key)
        store.resolve(con, key, args.by, args.reason)
    print(f"{key} resolved by {args.by}; it stays in ops.outbox for the record")
    return 0


def _cmd_approvals_list(args: argparse.Namespace) -> int:
    with _warehouse().connect() as con:  # applies the schema: ops.outbox may be new
        rows = store.list_rows(con, status="awaiting_approval")
    _print_rows(rows, args.json, "nothing awaits approval")
    return 0


def _decide(args: argparse.Namespace, approve: bool) -> int:
    with _warehouse().transaction() as con:
        key = store.find_key(con, args.key)
        store.decide(con, key, approve, args.by, args.reason)
    verdict = "approved: the next delivery sends it" if approve else "rejected: it will not be sent"
    print(f"{key} {verdict}")
    return 0


def _cmd_credit_limit_request(args: argparse.Namespace) -> int:
    from integration_assets.streams.erp_mapping import erp_credit_limit
    from integration_assets.streams.money import MoneyFormatError, to_minor_units
    from integration_assets.streams.outbox import WriteIntent

    currency = args.currency.upper()
    try:
        limit_minor = to_minor_units(args.amount, currency)
    except MoneyFormatError:
        raise store.OutboxError(f"{args.amount!r} is not an amount like 5000.00") from None
    with _warehouse().transaction() as con:
        row = con.execute(
            "SELECT credit_limit_minor, currency FROM core.customers WHERE customer_id = ?",
            [str(args.customer_id)],
        ).fetchone()
        if row is None:
            raise store.OutboxError(
                f"no customer {args.customer_id} in core.customers: run the pipeline first, or check the id"
            )
        previous = row[0] if row[1] in (None, currency) else None
        mapped = erp_credit_limit(
            {
                "customer_id": str(args.customer_id),
                "credit_limit_minor": limit_minor,
                "currency": currency,
                "requested_by": args.by,
                "reason": args.reason,
            },
            None if previous is None else int(previous),
        )
        if mapped is None:
            print(f"customer {args.customer_id} already has that credit limit: nothing to request")
            return 0
        if mapped.quarantine:
            raise store.OutboxError(f"cannot request it: {mapped.quarantine}")
        plan = store.request_write(
            con,
            WriteIntent(
                "erp",
                "credit_limit",
                mapped.external_id,
                mapped.payload,
                f"operator:{args.by}",
                mapped.approval_rule,
            ),
            args.by,
            args.reason,
        )
    for new in plan.new_rows:
        print(
            f"{new.idempotency_key} awaits approval by another person (integration-assets approvals approve)"
        )
    if not plan.new_rows:
        print("the same request is already in the outbox")
    return 0


def _operator_arguments(parser: argparse.ArgumentParser, reason_required: bool) -> None:
    parser.add_argument("--by", required=True, help="who decides (kept in ops.operator_actions)")
    parser.add_argument("--reason", required=reason_required, default=None, help="why")


def add_commands(commands: argparse._SubParsersAction) -> None:
    dlq = commands.add_parser("dlq", help="dead letters: list, show, retry (with edits), resolve")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_commands.add_parser("list", help="open dead letters")
    listing.add_argument("--target", help="erp, crm or wms")
    listing.add_argument("--entity", help="for example customer, sales_order, account")
    listing.add_argument(
        "--error-class", help="for example validation, conflict, retries_exhausted"
    )
    listing.add_argument("--all", action="store_true", help="include resolved ones")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_cmd_dlq_list)
    show = dlq_commands.add_parser(
        "show", help="one row: payload, the target's answer, operator actions"
    )
    show.add_argument("key", help="the idempotency key, or its unique start")
    show.set_defaults(handler=_cmd_show)
    retry = dlq_commands.add_parser(
        "retry", help="queue a dead letter again, optionally with field edits"
    )
    retry.add_argument("key")
    retry.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="override a mapped field (dotted for nested: billing_address.postal_code=40202); needs --reason",
    )
    retry.add_argument(
        "--owner-approved-by",
        metavar="OWNER",
        default=None,
        help="the registered owner (email or key in contracts/ownership.yaml) who agreed to an edit "
        "of a field whose system of record is not the target, e.g. customer-service@example.com",
    )
    _operator_arguments(retry, reason_required=False)
    retry.set_defaults(handler=_cmd_dlq_retry)
    resolve = dlq_commands.add_parser(
        "resolve", help="close a dead letter by hand (kept for the record)"
    )
    resolve.add_argument("key")
    _operator_arguments(resolve, reason_required=True)
    resolve.set_defaults(handler=_cmd_dlq_resolve)

    approvals = commands.add_parser("approvals", help="high-stakes writes waiting for a person")
    approval_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    waiting = approval_commands.add_parser("list", help="writes awaiting approval")
    waiting.add_argument("--json", action="store_true")
    waiting.set_defaults(handler=_cmd_approvals_list)
    show = approval_commands.add_parser("show", help="one write and its history")
    show.add_argument("key")
    show.set_defaults(handler=_cmd_show)
    for name, approve in (("approve", True), ("reject", False)):
        decision = approval_commands.add_parser(name, help=f"{name} a write (audited)")
        decision.add_argument("key")
        _operator_arguments(decision, reason_required=True)
        decision.set_defaults(handler=lambda args, approve=approve: _decide(args, approve))

    credit = commands.add_parser("credit-limit", help="request a customer's credit limit change")
    credit_commands = credit.add_subparsers(dest="credit_command", required=True)
    request = credit_commands.add_parser(
        "request", help="queue a change for approval by another person (four eyes)"
    )
    request.add_argument("customer_id")
    request.add_argument("amount", help="the new limit, e.g. 5000.00")
    request.add_argument("--currency", default="USD")
    _operator_arguments(request, reason_required=True)
    request.set_defaults(handler=_cmd_credit_limit_request)
