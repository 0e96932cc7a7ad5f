"""`integration-assets explain order|customer|sku ID [--json]`: one entity's whole story.

Reads the warehouse read-only and briefly (DuckDB lets one writer hold the file: the pipeline may be
running). An id the warehouse does not know is one sentence on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_explain(args: argparse.Namespace) -> int:
    from integration_assets.environment import apply_dagster_environment
    from integration_assets.explain import EXPLAINERS, ExplainNotFound, render_text
    from integration_assets.storage.resources import WarehouseResource

    apply_dagster_environment()
    try:
        with WarehouseResource().warehouse().connect(read_only=True) as con:
            story = EXPLAINERS[args.entity](con, args.id)
    except ExplainNotFound as error:
        print(f"integration-assets explain: {error}", file=sys.stderr)
        return 1
    print(json.dumps(story, indent=2, default=str) if args.json else render_text(story))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `explain order|customer|sku ID [--json]`."""
    explain = commands.add_parser(
        "explain",
        help="one order's, customer's or SKU's whole story across every system",
        description=(
            "Everything the warehouse knows about one entity, in time order: each event with its source "
            "system, raw reference and time; what each system knew when; what was written where and "
            "with what outcome; reconciliation and open exceptions."
        ),
    )
    explain.add_argument("entity", choices=("order", "customer", "sku"))
    explain.add_argument("id", help="an order id (5100001000), a customer id, or a SKU")
    explain.add_argument("--json", action="store_true", help="the whole story as JSON")
    explain.set_defaults(handler=_cmd_explain)
