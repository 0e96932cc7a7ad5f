"""`integration-assets owners [KEY] [--json] [--no-instance]`: what is each owner's to act on."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _cmd_owners(args: argparse.Namespace) -> int:
    from integration_assets.contracts.ownership import load_ownership
    from integration_assets.definitions import defs
    from integration_assets.environment import apply_dagster_environment
    from integration_assets.explain.exceptions import open_exceptions
    from integration_assets.owners import owner_views, render_owners, stream_owners
    from integration_assets.report import latest_check_results
    from integration_assets.storage.resources import WarehouseResource

    apply_dagster_environment()
    registry = load_ownership()
    if args.key and args.key not in registry.owners:
        print(
            f"integration-assets owners: no owner {args.key!r} in the ownership registry "
            f"(owners: {', '.join(registry.owners)})",
            file=sys.stderr,
        )
        return 2
    warehouse = WarehouseResource().warehouse()
    exceptions: list[dict[str, Any]] = []
    if warehouse.path.exists():
        with warehouse.connect(read_only=True) as con:
            exceptions = open_exceptions(con)
    else:
        print(
            f"(no warehouse at {warehouse.path} yet: no open exceptions to show)", file=sys.stderr
        )
    views = owner_views(
        registry,
        stream_owners(),
        {spec.key.to_user_string(): tuple(spec.owners) for spec in defs.resolve_all_asset_specs()},
        exceptions,
        [] if args.no_instance else latest_check_results(),
    )
    if args.key:
        views = [view for view in views if view.key == args.key]
    if args.json:
        print(json.dumps([view.as_dict() for view in views], indent=2, default=str))
    else:
        print(render_owners(views), end="")
    return 0


def add_commands(commands: Any) -> None:
    owners = commands.add_parser(
        "owners",
        help="each owner's streams, attributes, assets, open exceptions and broken promises",
    )
    owners.add_argument(
        "key", nargs="?", help="one owner of the registry (finance, warehouse_ops...)"
    )
    owners.add_argument("--json", action="store_true")
    owners.add_argument(
        "--no-instance", action="store_true", help="skip the Dagster instance (no check results)"
    )
    owners.set_defaults(handler=_cmd_owners)
