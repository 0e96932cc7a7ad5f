"""The `integration-assets` command: demo, dev, sandbox, report, gate, dlq, approvals."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from integration_assets.local_stack import DEFAULT_SCENARIO


def _cmd_demo(args: argparse.Namespace) -> int:
    from integration_assets.demo import run_demo

    outcome = run_demo(Path(args.scenario), keep_data=args.keep_data)
    return 0 if outcome["report"]["all_balances_hold"] else 1


def _cmd_dev(args: argparse.Namespace) -> int:
    from integration_assets.environment import dagster_environment
    from integration_assets.local_stack import start_sandbox
    from integration_assets.storage.resources import PROJECT_ROOT

    with start_sandbox(
        Path(args.scenario), port=args.sandbox_port, clock_speed=args.clock_speed
    ) as sandbox:
        print(f"Sandbox storefront on {sandbox.storefront_url} (clock speed {args.clock_speed}x)")
        env = dagster_environment(sandbox.environment())
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            str(PROJECT_ROOT / "workspace.yaml"),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ]
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT)
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            try:
                return process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                return 130


def _cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from integration_assets.sandbox.__main__ import main as sandbox_main

    return sandbox_main(["--help"])


def _cmd_report(args: argparse.Namespace) -> int:
    from integration_assets.environment import apply_dagster_environment
    from integration_assets.report import build_report, render_text
    from integration_assets.storage.resources import RawLogResource, WarehouseResource

    apply_dagster_environment()
    report = build_report(
        RawLogResource().log(),
        WarehouseResource().warehouse(),
        include_instance=not args.no_instance,
    )
    print(json.dumps(report, indent=2, default=str) if args.json else render_text(report))
    return 0 if report["all_balances_hold"] else 1


def _cmd_gate_recheck(args: argparse.Namespace) -> int:
    from integration_assets.storage.gates import clear_verdicts
    from integration_assets.storage.resources import WarehouseResource

    with WarehouseResource().warehouse().transaction() as con:
        cleared = clear_verdicts(con, args.stream, args.batch_id)
    if not cleared:
        print(
            f"no gate verdicts for batch {args.batch_id} in stream {args.stream}: nothing to re-check",
            file=sys.stderr,
        )
        return 1
    print(
        f"cleared {cleared} verdict(s) of batch {args.batch_id}; the next run of the staging checks judges it again"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="integration-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run the sandbox, materialize every asset, print a summary"
    )
    demo.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    demo.add_argument(
        "--keep-data", action="store_true", help="keep the raw log and warehouse of earlier runs"
    )
    demo.set_defaults(handler=_cmd_demo)

    dev = commands.add_parser("dev", help="the sandbox plus `dagster dev` (UI on 127.0.0.1:3000)")
    dev.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--sandbox-port", type=int, default=8701)
    dev.add_argument(
        "--clock-speed", type=float, default=60.0, help="sandbox seconds per real second"
    )
    dev.set_defaults(handler=_cmd_dev)

    sandbox = commands.add_parser("sandbox", help="the sandbox systems")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    serve = sandbox_commands.add_parser(
        "serve",
        help="serve the sandbox systems for a scenario",
        description="Arguments: --scenario FILE [--host H] [--port N] [--clock-speed X] [--ready-file F]",
        add_help=False,
    )
    serve.set_defaults(handler=_cmd_sandbox_serve)

    report = commands.add_parser("report", help="counts, check results and count-balance equations")
    report.add_argument("--json", action="store_true")
    report.add_argument(
        "--no-instance", action="store_true", help="skip the Dagster instance (warehouse only)"
    )
    report.set_defaults(handler=_cmd_report)

    gate = commands.add_parser("gate", help="the staging gate")
    gate_commands = gate.add_subparsers(dest="gate_command", required=True)
    recheck = gate_commands.add_parser(
        "recheck", help="forget a batch's verdicts so the checks judge it again"
    )
    recheck.add_argument("stream", help="for example storefront/orders")
    recheck.add_argument("batch_id")
    recheck.set_defaults(handler=_cmd_gate_recheck)

    from integration_assets import (
        cli_chaos,
        cli_explain,
        cli_export,
        cli_outbox,
        cli_owners,
        cli_replay,
        cli_webhooks,
    )

    cli_chaos.add_commands(commands)
    cli_export.add_commands(commands)
    cli_outbox.add_commands(commands)
    cli_owners.add_commands(commands)
    cli_explain.add_commands(commands)
    cli_replay.add_commands(commands)
    cli_webhooks.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["sandbox", "serve"] and argv[2:]:
        # The sandbox owns its arguments (python -m integration_assets.sandbox takes the same ones).
        from integration_assets.sandbox.__main__ import main as sandbox_main

        return sandbox_main(argv[2:])
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from integration_assets.sandbox.scenario import ScenarioError
    from integration_assets.storage.outbox import OutboxError
    from integration_assets.storage.warehouse import WarehouseLockTimeout

    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at exit
        return code
    except OutboxError as error:
        # The operator asked for something the row's state does not allow: say why.
        print(f"integration-assets {args.command}: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, WarehouseLockTimeout, ScenarioError) as error:
        # Expected operator situations (nothing run yet, the warehouse busy): a sentence, not a traceback.
        print(f"integration-assets {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `... | head` closed the pipe: stop quietly (Python's documented recipe), no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
