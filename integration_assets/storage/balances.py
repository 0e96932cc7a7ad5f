"""Write count-balance equations to ops.count_balances, where the report and the UI read them."""

from __future__ import annotations

import duckdb
import orjson

from integration_assets.streams.balances import Balance
from integration_assets.streams.timestamps import utc_now_naive


def record_balance(
    connection: duckdb.DuckDBPyConnection, run_id: str, asset_key: str, scope: str, balance: Balance
) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO ops.count_balances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            asset_key,
            scope,
            balance.name,
            orjson.dumps({"left": balance.left, "right": balance.right}).decode(),
            balance.left_total,
            balance.right_total,
            balance.holds,
            balance.as_text(),
            utc_now_naive(),
        ],
    )
