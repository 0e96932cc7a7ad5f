"""`python -m integration_assets.sandbox --scenario FILE [--port N] [--clock-speed X] [--ready-file F]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from integration_assets.sandbox.scenario import ScenarioError
from integration_assets.sandbox.server import serve_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m integration_assets.sandbox",
        description="Serve the sandbox systems (storefront, payments, ERP, CRM, WMS) for a scenario.",
    )
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=None,
        help="scenario seconds per real second (default: the scenario's clock.speed; 0 = frozen)",
    )
    parser.add_argument(
        "--ready-file", default=None, help="write {system: {url, ...}} JSON here once listening"
    )
    parser.add_argument(
        "--warehouse-inbox",
        default=None,
        help="folder the sandbox WMS drops its CSV files into as the clock moves (default: none)",
    )
    parser.add_argument(
        "--alerts-log",
        default=None,
        help="serve a Slack-compatible alert receiver that appends what it is sent to this file",
    )
    args = parser.parse_args(argv)
    try:
        serve_forever(
            Path(args.scenario),
            args.host,
            args.port,
            clock_speed=args.clock_speed,
            ready_file=Path(args.ready_file) if args.ready_file else None,
            warehouse_inbox=Path(args.warehouse_inbox) if args.warehouse_inbox else None,
            alerts_log=Path(args.alerts_log) if args.alerts_log else None,
        )
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
