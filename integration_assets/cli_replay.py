"""`integration-assets replay`: rebuild every core and delivery-intended state from raw alone, and compare.

Replays the raw log into a fresh warehouse (`--into`, default `data/replay/<timestamp>.duckdb`),
prints the state digest of the replayed and the live warehouse per table and per delivery target,
and says EQUAL or names what differs (exit 0 when equal, 1 when not). `--dry-run` also lists, per
target, the documents the replayed state would add, change (with the fields) or stop intending
compared with what the live outbox last intended (exit 1 when any would change). Nothing is written
into the raw log, the live warehouse or a target in either mode.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _crm_client() -> Any | None:
    """The CRM client for the planners' read-only lookups, from CRM_* variables; None when unset."""
    if not os.environ.get("CRM_URL"):
        return None
    from integration_assets.systems.crm import CrmClient

    return CrmClient(
        base_url=os.environ["CRM_URL"],
        client_id=os.environ.get("CRM_CLIENT_ID", ""),
        client_secret=os.environ.get("CRM_CLIENT_SECRET", ""),
        default_owner_id=os.environ.get("CRM_DEFAULT_OWNER_ID", ""),
        max_retries=1,
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    from integration_assets.environment import apply_dagster_environment
    from integration_assets.replay.against_live import render, replay_against_live
    from integration_assets.replay.rebuild import ReplayTargetExists
    from integration_assets.storage.resources import (
        RawLogResource,
        WarehouseResource,
        default_data_dir,
    )

    apply_dagster_environment()
    raw_dir = Path(args.raw) if args.raw else RawLogResource().log().root
    live = Path(args.live) if args.live else WarehouseResource().warehouse().path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    into = Path(args.into) if args.into else default_data_dir() / "replay" / f"{stamp}.duckdb"
    if into.resolve() == live.resolve():
        print(
            "integration-assets replay: --into is the live warehouse; a replay goes into a fresh file",
            file=sys.stderr,
        )
        return 2
    clients = {} if args.no_lookups else {"crm": _crm_client()}
    try:
        comparison = replay_against_live(raw_dir, live, into, clients, include_dry_run=args.dry_run)
    except ReplayTargetExists as error:
        print(f"integration-assets replay: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2, default=str))
    else:
        print("\n".join(render(comparison)))
    would_change = comparison.dry_run is not None and bool(comparison.dry_run.changes)
    return 0 if comparison.equal and not would_change else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `replay`."""
    replay = commands.add_parser(
        "replay",
        help="rebuild core and delivery-intended state from raw alone into a fresh warehouse; compare digests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--into", help="the fresh warehouse file to replay into (must not exist)")
    replay.add_argument("--raw", help="the raw log to replay (default: the configured one)")
    replay.add_argument(
        "--live", help="the live warehouse to compare with (default: the configured one)"
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="also list, per target, what the replayed state would write compared with the live outbox",
    )
    replay.add_argument(
        "--no-lookups",
        action="store_true",
        help="do not ask the CRM its read-only lookups (its deliveries are then not computed)",
    )
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_cmd_replay)
