"""The small chaos suite (`integration-assets chaos --small`): a body that is not JSON, webhooks
duplicated, out of order and forged, and a `kill -9` in the middle of the ERP load. Every invariant
must hold, and every case must show its fault really happened (the full suite is `make chaos`)."""

import pytest

from integration_assets.chaos.suite import COLUMNS, render_table, run_suite, select_cases

pytestmark = pytest.mark.e2e


def test_the_small_suite_keeps_every_invariant(tmp_path, capsys):
    cases = select_cases(small=True)
    assert [case.name for case in cases] == ["bad_bodies", "webhooks", "kill_mid_load"]
    results = run_suite(cases, tmp_path / "work")
    table = render_table(results)
    print(table)
    broken = [
        f"{result.case.name}: {invariant.name}: {invariant.detail}"
        for result in results
        for invariant in result.invariants
        if not invariant.holds
    ]
    assert not broken, "\n".join(broken)
    for result in results:
        names = [invariant.name for invariant in result.invariants]
        assert names[: len(COLUMNS)] == list(COLUMNS)
        assert len(names) > len(COLUMNS)  # the case's own findings: its fault fired, and more
        assert result.records > 0 and result.runs >= 6
    by_case = {result.case.name: result for result in results}
    own = {i.name: i for i in by_case["kill_mid_load"].invariants}
    assert "killed after" in own["killed_mid_load"].detail
    assert "1 orphaned run released" in own["killed_mid_load"].detail
    webhooks = {i.name: i for i in by_case["webhooks"].invariants}
    assert "'forged': 401" in webhooks["forged_rejected"].detail
    assert "Every invariant held in all 3 cases." in table
    assert not (tmp_path / "work").exists()  # each case's world removed afterwards
