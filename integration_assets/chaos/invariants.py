"""What must hold after any fault, checked from the outside: the warehouse, the raw log, the sandbox's
own books, and every file the pipeline and Dagster wrote.

Each check is a function returning an `Invariant`: its name, whether it holds, and a sentence that
says what was compared (and, when it fails, the first offenders). They read; none of them repairs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from integration_assets.chaos.scenario import HOSTILE, HOSTILE_CUSTOMER, HOSTILE_STORY
from integration_assets.csv_export import export_table
from integration_assets.defs.warehouse.names import DROPS_STREAM
from integration_assets.defs.warehouse.names import SOURCE as WAREHOUSE_SOURCE
from integration_assets.sandbox.server import RunningSystems
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.warehouse import Warehouse, table_exists
from integration_assets.systems.payments import PaymentsClient
from integration_assets.webhooks.routing import batches_staged_as

ERP_TYPES = ("customer", "sales_order", "invoice", "credit_note", "payment_applied")
CRM_OBJECTS = ("Account", "Contact")
# Files a case folder holds that are not the pipeline's: the scenario (it holds the credentials).
NOT_WRITTEN_BY_THE_PIPELINE = ("*.yaml",)


@dataclass(frozen=True)
class Invariant:
    name: str
    holds: bool
    detail: str

    @property
    def mark(self) -> str:
        """`ok  ` or `FAIL`, four characters for the tables."""
        return "ok  " if self.holds else "FAIL"


def _first(items: Iterable[Any], n: int = 3) -> str:
    items = list(items)
    shown = ", ".join(str(item) for item in items[:n])
    return shown + (f" (+{len(items) - n} more)" if len(items) > n else "")


# ---- every source record promoted or quarantined exactly once ---------------------------------
def accounted(con: duckdb.DuckDBPyConnection, log: RawLog) -> Invariant:
    """Every landed batch staged with as many records as it holds; every count balance holds; no
    record both staged and quarantined; every dropped warehouse file judged once. (An order version
    staged twice cannot happen: it is staging's primary key.)"""
    problems = []
    failed = con.execute(
        "SELECT asset_key || ' ' || scope || ': ' || text FROM ops.count_balances WHERE NOT holds"
    ).fetchall()
    if failed:
        problems.append(f"{len(failed)} count balances fail: {_first(r[0] for r in failed)}")
    balances = con.execute("SELECT count(*) FROM ops.count_balances").fetchone()[0]
    staged = {
        batch_id: (stream, int(read))
        for stream, batch_id, read in con.execute(
            "SELECT stream, batch_id, records_read FROM staging.batches"
        ).fetchall()
    }
    landed = 0
    records = 0
    streams = {
        stream
        for (stream,) in con.execute("SELECT DISTINCT stream FROM staging.batches").fetchall()
    }
    streams |= {
        f"{source.name}/{stream.name}"
        for source in log.root.iterdir()
        if source.is_dir() and source.name not in ("webhooks", WAREHOUSE_SOURCE)  # files: by file
        for stream in source.iterdir()
        if stream.is_dir()
    }
    for stream in sorted(streams):
        for manifest in batches_staged_as(log, stream):
            landed += 1
            records += manifest.records
            if manifest.batch_id not in staged:
                problems.append(f"batch {manifest.batch_id} of {stream} landed, never staged")
            elif staged[manifest.batch_id][1] != manifest.records:
                problems.append(
                    f"batch {manifest.batch_id} holds {manifest.records} records, staging read "
                    f"{staged[manifest.batch_id][1]}"
                )
    both = con.execute(
        "SELECT count(*) FROM staging.storefront_orders s JOIN ops.quarantine q USING (raw_ref)"
    ).fetchone()[0]
    if both:
        problems.append(f"{both} records both staged and quarantined")
    dropped, file_problems = _file_problems(con, log)
    problems += file_problems
    detail = (
        f"{landed} batches, {records} records landed = staged + quarantined + duplicates; "
        f"{dropped} warehouse files each staged, quarantined or a duplicate once; "
        f"{balances} count balances hold; nothing both staged and quarantined"
    )
    return Invariant("accounted", not problems, "; ".join(problems) or detail)


def _file_problems(con: duckdb.DuckDBPyConnection, log: RawLog) -> tuple[int, list[str]]:
    """Every file the WMS dropped (a record of raw/warehouse/drops) has exactly one verdict in
    staging.warehouse_files: staged whole, quarantined whole, or a duplicate of an earlier file."""
    dropped = [
        manifest.raw_ref(index)
        for manifest in log.batches(WAREHOUSE_SOURCE, DROPS_STREAM)
        for index in range(manifest.records)
    ]
    if not dropped:
        return 0, []
    verdicts = Counter(
        ref for (ref,) in con.execute("SELECT drop_ref FROM staging.warehouse_files").fetchall()
    )
    missing = [ref for ref in dropped if verdicts[ref] == 0]
    twice = [ref for ref in dropped if verdicts[ref] > 1]
    problems = []
    if missing:
        problems.append(f"{len(missing)} dropped files have no verdict: {_first(missing)}")
    if twice:
        problems.append(f"{len(twice)} dropped files judged twice: {_first(twice)}")
    return len(dropped), problems


# ---- no document twice in the ERP, the CRM or the WMS ----------------------------------------
def no_duplicate_documents(systems: RunningSystems, con: duckdb.DuckDBPyConnection) -> Invariant:
    """Each ERP document created once and sent from the outbox; CRM records unique by external id
    and created once; one WMS reservation per order."""
    problems = []
    erp_stats = systems.erp.stats()
    documents = {kind: systems.erp.app.documents(kind) for kind in ERP_TYPES}
    erp_total = sum(len(found) for found in documents.values())
    seeded = len(systems.scenario.erp_config().customers)
    creates = int(erp_stats["writes"].get("creates", 0))
    if creates != erp_total - seeded:
        problems.append(f"ERP: {creates} creates for {erp_total - seeded} documents")
    sent = {
        (entity, external_id)
        for entity, external_id in con.execute(
            "SELECT entity, external_id FROM ops.outbox WHERE target = 'erp' AND status = 'sent'"
        ).fetchall()
    }
    at_erp = {(kind, doc["external_id"]) for kind, found in documents.items() for doc in found}
    seeded_ids = {("customer", c.external_id) for c in systems.scenario.erp_config().customers}
    unexplained = at_erp - sent - seeded_ids
    if unexplained:
        problems.append(f"ERP documents no outbox message sent: {_first(sorted(unexplained))}")
    crm_total = 0
    crm_writes = systems.crm.stats()["writes"]
    for sobject in CRM_OBJECTS:
        records = systems.crm.records(sobject)
        crm_total += len(records)
        ids = Counter(r.get("External_Id__c") for r in records if r.get("External_Id__c"))
        doubled = [key for key, n in ids.items() if n > 1]
        if doubled:
            problems.append(f"CRM {sobject} external ids twice: {_first(doubled)}")
        created = int(crm_writes.get(sobject, {}).get("created", 0))
        if created > len(records):  # a record created twice under two ids, one of them lost
            problems.append(f"CRM {sobject}: {created} creates for {len(records)} records")
    reservations = Counter(r["order_id"] for r in systems.wms.app.reservations())
    doubled = [order for order, n in reservations.items() if n > 1]
    if doubled:
        problems.append(f"WMS reservations twice for orders {_first(doubled)}")
    detail = (
        f"ERP {erp_total} documents ({creates} creates), CRM {crm_total} records, "
        f"WMS {sum(reservations.values())} reservations, each once"
    )
    return Invariant("no_duplicates", not problems, "; ".join(problems) or detail)


# ---- every ledger balances ------------------------------------------------------------------
def ledgers_balance(systems: RunningSystems, con: duckdb.DuckDBPyConnection) -> Invariant:
    """The inventory positions are the sums of their movements; each balance transaction's ledger
    entries add up to the provider's net, and every transaction the provider shows is in the ledger.
    (The outbox's books, promoted = delivered + dead + awaiting + pending, are count balances:
    `accounted` checks every one.)"""
    problems = []
    positions = con.execute(
        """
        SELECT p.sku FROM core.inventory_positions p
        LEFT JOIN (SELECT sku, sum(on_hand_delta) AS on_hand, sum(committed_delta) AS committed
                   FROM core.inventory_ledger GROUP BY sku) m USING (sku)
        WHERE p.on_hand <> coalesce(m.on_hand, 0) OR p.committed <> coalesce(m.committed, 0)
           OR p.available <> p.on_hand - p.committed
        """
    ).fetchall()
    if positions:
        problems.append(
            f"inventory positions off their movements: {_first(r[0] for r in positions)}"
        )
    entries = dict(
        con.execute(
            "SELECT balance_transaction, sum(amount_minor) FROM core.financial_ledger "
            "WHERE balance_transaction IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    provider = _provider_balance_transactions(systems)
    missing = sorted(set(provider) - set(entries))
    if missing:
        problems.append(f"{len(missing)} balance transactions not in the ledger: {_first(missing)}")
    off = sorted(bt for bt, total in entries.items() if bt in provider and total != provider[bt])
    if off:
        problems.append(f"ledger entries do not add up to the provider's net: {_first(off)}")
    detail = (
        f"{len(entries)} balance transactions = the provider's net, "
        f"inventory positions = their movements"
    )
    return Invariant("ledgers_balance", not problems, "; ".join(problems) or detail)


def _provider_balance_transactions(systems: RunningSystems) -> dict[str, int]:
    """Every balance transaction the payment provider lists now, and its net (minor units), read
    with the project's own Stripe client."""
    client = PaymentsClient(base_url=systems.payments.url, secret_key=systems.payments.secret_key)
    return {
        item["id"]: int(item["net"])
        for page in client.iter_pages("balance_transactions")
        for item in page.records
    }


# ---- no secret anywhere ----------------------------------------------------------------------
def no_secrets(secrets: Iterable[str], folder: Path, warehouse: Warehouse) -> Invariant:
    """No credential in any file under the case folder (raw, audit, alert log, the Dagster instance's
    run and event storage, compute logs) nor in any text column of the warehouse."""
    wanted = [secret.encode() for secret in secrets]
    files = 0
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in (".duckdb", ".wal"):
            continue
        if any(
            path.match(pattern) and path.parent == folder for pattern in NOT_WRITTEN_BY_THE_PIPELINE
        ):
            continue
        files += 1
        content = path.read_bytes()
        found += [str(path.relative_to(folder)) for secret in wanted if secret in content]
    columns = 0
    with warehouse.connect(read_only=True) as con:
        text_columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON') OR data_type LIKE '%[]' OR data_type LIKE 'STRUCT%' "
            "OR data_type LIKE 'MAP%'"
        ).fetchall()
        for schema, table, column in text_columns:
            columns += 1
            for secret in secrets:
                hits = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" '
                    f'WHERE contains(CAST("{column}" AS VARCHAR), ?)',
                    [secret],
                ).fetchone()[0]
                if hits:
                    found.append(f"{schema}.{table}.{column}")
    detail = f"{files} files and {columns} warehouse columns searched for {len(wanted)} secrets"
    return Invariant(
        "no_secrets",
        not found,
        f"secrets found in {_first(sorted(set(found)))}" if found else detail,
    )


# ---- hostile strings stored verbatim, never run ----------------------------------------------
def hostile_verbatim(systems: RunningSystems, con: duckdb.DuckDBPyConnection) -> Invariant:
    """The hostile customer's fields in core, at the ERP and at the CRM exactly as the storefront
    sent them; the hostile order's megabyte note staged whole; every table still there."""
    problems = []
    row = con.execute(
        "SELECT first_name, last_name, company, address_line1 FROM core.customers WHERE customer_id = ?",
        [str(HOSTILE_CUSTOMER)],
    ).fetchone()
    expected = (
        HOSTILE["first_name"],
        HOSTILE["last_name"],
        HOSTILE["company"],
        HOSTILE["address1"],
    )
    if row is None:
        problems.append("the hostile customer is not in core.customers")
    elif tuple(row) != expected:
        problems.append("core.customers changed a hostile string")
    erp = [
        doc["record"]
        for doc in systems.erp.app.documents("customer")
        if doc["external_id"] == str(HOSTILE_CUSTOMER)
    ]
    if not erp or erp[0].get("name") != HOSTILE["company"]:
        problems.append("the ERP customer's name is not the company as sent")
    contacts = [
        r for r in systems.crm.records("Contact") if r.get("LastName") == HOSTILE["last_name"]
    ]
    if not contacts or contacts[0].get("FirstName") != HOSTILE["first_name"]:
        problems.append("the CRM contact's names are not as sent")
    notes = con.execute(
        "SELECT DISTINCT json_extract_string(snapshot, '$.note') FROM staging.storefront_orders "
        "WHERE email = 'hostile@example.com'"
    ).fetchall()
    if [n for (n,) in notes] != [HOSTILE["note"]]:
        problems.append(
            f"the {len(HOSTILE['note'])}-character note of {HOSTILE_STORY} was not staged whole"
        )
    exported = _exported_row(con, "core.customers", "customer_id", str(HOSTILE_CUSTOMER))
    if exported is None:
        problems.append("the hostile customer is not in the CSV export of core.customers")
    elif (
        exported["last_name"] != "'" + HOSTILE["last_name"]
        or exported["first_name"] != HOSTILE["first_name"]
        or exported["company"] != HOSTILE["company"]
        or exported["address_line1"] != HOSTILE["address1"]
    ):
        problems.append("the CSV export did not keep the values as text with the formula defused")
    for table in ("core.customers", "core.orders_current", "staging.storefront_orders"):
        if not table_exists(con, table):
            problems.append(f"{table} is gone")
    detail = (
        "SQL, a spreadsheet formula, script, odd Unicode and a 1 MiB note: verbatim in core, "
        "the ERP and the CRM; the formula defused in the CSV export; no table dropped"
    )
    return Invariant("hostile_verbatim", not problems, "; ".join(problems) or detail)


def _exported_row(
    con: duckdb.DuckDBPyConnection, table: str, key: str, value: str
) -> dict[str, str] | None:
    """The row whose `key` is `value`, as `integration-assets export` writes it and a CSV reader reads it."""
    import csv
    import io

    buffer = io.StringIO()
    export_table(con, table, buffer)
    buffer.seek(0)
    return next((row for row in csv.DictReader(buffer) if row[key] == value), None)


def check_all(
    systems: RunningSystems, folder: Path, warehouse: Warehouse, secrets: Iterable[str]
) -> list[Invariant]:
    """The invariants every case must keep, in the table's order."""
    log = RawLog(folder / "data" / "raw")
    with warehouse.connect(read_only=True) as con:
        found = [
            accounted(con, log),
            no_duplicate_documents(systems, con),
            ledgers_balance(systems, con),
            hostile_verbatim(systems, con),
        ]
    return [*found, no_secrets(secrets, folder, warehouse)]


def as_json(invariants: Iterable[Invariant]) -> str:
    return json.dumps([invariant.__dict__ for invariant in invariants], indent=2)
