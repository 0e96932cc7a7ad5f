"""`integration-assets export SCHEMA.TABLE [--out FILE]`: a warehouse table as spreadsheet-safe CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _cmd_export(args: argparse.Namespace) -> int:
    from integration_assets.csv_export import UnknownTable, export_table
    from integration_assets.storage.resources import WarehouseResource

    with WarehouseResource().warehouse().connect(read_only=True) as con:
        try:
            if args.out:
                with Path(args.out).open("w", newline="", encoding="utf-8") as out:
                    rows = export_table(con, args.table, out)
                print(f"{rows} rows of {args.table} written to {args.out}", file=sys.stderr)
            else:
                export_table(con, args.table, sys.stdout)
        except UnknownTable as error:
            print(f"integration-assets export: {error}", file=sys.stderr)
            return 2
    return 0


def add_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="a warehouse table as CSV for a spreadsheet (formulas defused, values as stored)",
    )
    export.add_argument("table", help="SCHEMA.TABLE, for example reporting.open_exceptions")
    export.add_argument("--out", help="write to this file (default: standard output)")
    export.set_defaults(handler=_cmd_export)
