"""Put storefront orders into a warehouse the way the pipeline does, without a storefront: land them as
a raw batch, stage that batch (contract rules and all), and promote it into the order stream."""

from datetime import UTC, datetime

from integration_assets.contracts import load_contract
from integration_assets.defs.orders.core import promote_batch
from integration_assets.defs.orders.names import SOURCE, STREAM_NAME
from integration_assets.defs.orders.staging import CONTRACT_NAME, stage_batch
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.hashing import payload_hash


def land_and_promote_orders(
    warehouse: Warehouse, raw_log: RawLog, orders: list[dict], run_id: str = "seed"
) -> dict:
    writer = raw_log.open_batch(SOURCE, STREAM_NAME)
    for order in orders:
        writer.append(
            {
                "batch_id": writer.batch_id,
                "record_index": writer.records,
                "source_system": SOURCE,
                "endpoint": "seeded by a test",
                "request_params": {},
                "page": 0,
                "fetched_at": datetime.now(UTC).isoformat(),
                "http_status": 200,
                "payload_hash": payload_hash(order),
                "run_id": run_id,
                "payload": order,
            }
        )
    manifest = writer.commit({"records_from_pages": len(orders)})
    staged = stage_batch(warehouse, raw_log, manifest, load_contract(CONTRACT_NAME), run_id)
    with warehouse.transaction() as con:
        promote_batch(con, manifest.batch_id, run_id, raw_log)
    return staged
