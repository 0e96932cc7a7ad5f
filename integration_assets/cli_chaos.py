"""`integration-assets chaos`: the chaos suite's command (`make chaos`); `soak` its long run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _cmd_chaos(args: argparse.Namespace) -> int:
    from integration_assets.chaos.suite import main, select_cases

    if args.soak_hours < 0:
        print("integration-assets chaos: --soak-hours must be 0 or more", file=sys.stderr)
        return 2
    try:
        select_cases(args.small, args.case or ())
    except ValueError as error:
        print(f"integration-assets chaos: {error}", file=sys.stderr)
        return 2
    return main(
        small=args.small,
        names=args.case or (),
        json_path=Path(args.json) if args.json else None,
        keep=Path(args.keep) if args.keep else None,
        soak_hours=args.soak_hours,
    )


def add_commands(commands: Any) -> None:
    chaos = commands.add_parser(
        "chaos",
        help="inject faults into the sandbox systems and check every invariant (make chaos)",
        description=(
            "Each case serves the chaos scenario with one kind of fault, runs the hourly sync as an "
            "operator would, and checks: every record promoted or quarantined exactly once, no "
            "duplicate document, every ledger balanced, hostile strings verbatim, no secret written. "
            "Exit 0 only when every invariant holds."
        ),
    )
    chaos.add_argument("--small", action="store_true", help="only the cases `make test` runs")
    chaos.add_argument("--case", action="append", help="run this case (repeatable)")
    chaos.add_argument("--json", help="also write the results as JSON to this file")
    chaos.add_argument(
        "--keep", help="keep each case's data dir and Dagster home under this folder"
    )
    chaos.add_argument(
        "--soak-hours",
        type=int,
        default=24,
        help="simulated hours of the soak after the cases (0: no soak; not with --small or --case)",
    )
    chaos.set_defaults(handler=_cmd_chaos)
