"""Delivery when the ERP misbehaves mid-run: an expiring token, and a run that fails half way."""

import yaml

from integration_assets_tests.delivery.conftest import delivery_scenario, open_stack


def with_erp_faults(tmp_path, *faults: dict):
    path = delivery_scenario(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["erp"] = {"faults": list(faults)}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_token_that_expires_mid_run_is_refreshed_once_and_the_run_continues(tmp_path):
    scenario = with_erp_faults(tmp_path, {"kind": "expire_tokens", "after_requests": 4})
    with open_stack(tmp_path, scenario) as stack:
        result = stack.deliver()
        assert result.success
        with stack.warehouse.connect() as con:
            refused = con.execute(
                "SELECT count(*) FROM ops.audit_log WHERE system = 'erp' AND status = '401' AND run_id = ?",
                [result.run_id],
            ).fetchone()[0]
        assert refused == 1  # the expired token was refused once, refreshed, and the write retried
        assert stack.erp_documents()["sales_order"] == 5
        assert set(stack.outbox("erp", "customer")) == {"sent", "dead"}


def test_a_run_that_fails_half_way_and_is_run_again_creates_no_second_document(tmp_path):
    """The ERP goes down after a few writes (the run's later ERP writes wait); running it again, as an
    operator re-materializes from the UI, delivers the rest and doubles nothing."""
    # Two API requests answered (the ERP customers' extract and the customers' bulk write), then six
    # 503s: the sales orders' bulk write and its two retries, then the next entity's.
    scenario = with_erp_faults(tmp_path, {"kind": "down", "after_requests": 2, "count": 6})
    with open_stack(tmp_path, scenario) as stack:
        stack.deliver()
        first = stack.erp_documents()
        assert 0 < sum(first.values()) < 13
        # Customers in, the rest waiting: it stopped half way.
        assert first["customer"] == 3 and first["sales_order"] == first["invoice"] == 0
        stack.systems.erp.app.set_down(False)
        for _ in range(200):  # let the scripted outage run out: each answered request uses one
            if not stack.deliver().success:
                break
            if stack.erp_documents()["sales_order"] == 5:
                break
        documents = stack.erp_documents()
        assert documents["customer"] == 3 and documents["sales_order"] == 5
        again = stack.deliver()
        assert again.success and stack.erp_documents() == documents
        writes = stack.systems.erp.stats()["writes"]
        assert writes["creates"] == sum(documents.values())  # every document created exactly once
