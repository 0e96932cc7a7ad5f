"""The raw log is append-only and atomic: a batch is visible whole or not at all."""

import pytest

from integration_assets.storage.raw_log import RawLog


def test_committed_batch_is_readable_and_verifiable(tmp_path):
    log = RawLog(tmp_path)
    writer = log.open_batch("storefront", "orders")
    for i in range(3):
        writer.append({"record_index": i, "payload": {"id": i}})
    manifest = writer.commit({"cursor_after": "2026-01-01T00:00:00Z"})
    assert [m.batch_id for m in log.batches("storefront", "orders")] == [manifest.batch_id]
    assert [r["payload"]["id"] for r in log.read_records(manifest)] == [0, 1, 2]
    assert log.verify(manifest)
    manifest.path.write_bytes(manifest.path.read_bytes() + b"{}\n")
    assert not log.verify(manifest)


def test_aborted_batch_leaves_nothing_behind(tmp_path):
    log = RawLog(tmp_path)
    writer = log.open_batch("storefront", "orders")
    writer.append({"payload": {"id": 1}})
    writer.abort()
    assert log.batches("storefront", "orders") == []
    assert list((tmp_path / "storefront" / "orders").iterdir()) == []


def test_batches_are_listed_in_the_order_they_were_taken(tmp_path):
    log = RawLog(tmp_path)
    ids = []
    for _ in range(3):
        writer = log.open_batch("storefront", "orders")
        ids.append(writer.commit({}).batch_id)
    assert [m.batch_id for m in log.batches("storefront", "orders")] == ids
    assert log.latest("storefront", "orders").batch_id == ids[-1]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://s/orders.json?page_info=abc&limit=2>; rel="next"',
            {"next": "https://s/orders.json?page_info=abc&limit=2"},
        ),
        (
            '<https://s/a?page_info=p>; rel="previous", <https://s/a?page_info=n>; rel="next"',
            {"previous": "https://s/a?page_info=p", "next": "https://s/a?page_info=n"},
        ),
        (None, {}),
    ],
)
def test_link_header_parsing(header, expected):
    from integration_assets.systems.storefront import parse_link_header

    assert parse_link_header(header) == expected
