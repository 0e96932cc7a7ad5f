"""Layer 5 in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright) on the UI
that `integration-assets dev` (what `make dev` runs) serves over a demo's state.

The demo runs schema_drift.yaml: its first poll goes through, then the storefront renames
`total_price`, and the blocking check `required_fields_present` holds the next batches back. The
browser then looks at what an operator looks at: the lineage with its layers, the failed blocking
check with its explanation, and the run list.

Each page is also saved as a screenshot; `UI_SCREENSHOTS_DIR=docs/img` writes them there too (how the
README's pictures are made)."""

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from integration_assets.defs.orders.names import CHECK_REQUIRED_FIELDS, STAGING_ORDERS
from integration_assets.demo import JOB_NAME
from integration_assets_tests.e2e.ui_stack import ROOT, SCENARIOS, graphql, run_demo, running_dev

pytestmark = pytest.mark.e2e
# A page of the UI on a busy machine (2 cores, other tests beside) can take a while to fill in.
expect.set_options(timeout=30_000)

SCENARIO = SCENARIOS / "schema_drift.yaml"
VIEWPORT = {"width": 1600, "height": 1000}
# The lineage groups drawn open (their assets shown); every other group is drawn as one box.
OPEN_GROUPS = ("orders", "finance", "reporting")
# What the UI shows instead of a page when something broke.
ERROR_TEXT = re.compile(
    r"unexpected error|graphql error|PythonError|Something went wrong|Page not found", re.I
)
# Dagster's CSS module class names (fixed by the locked dagster-webserver version).
GRAPH = "[class*=AssetGraphExplorer_svgContainer]"
ASSET_NODE = "[class*=AssetNode_assetNodeContainer]"
ASSET_NAME = "[class*=AssetNode_assetName]"
COLLAPSED_GROUP = "[class*=CollapsedGroupNode_collapsedGroupNodeBox]"
OPEN_GROUP_HEADER = "[class*=ExpandedGroupNode_groupNodeHeaderBox]"
RUN_ROW = "[class*=RunsFeedRow_rowGrid]"

CHECKS = """{ assetNodeOrError(assetKey: {path: %s}) { ... on AssetNode { assetChecksOrError {
  ... on AssetChecks { checks { name blocking executionForLatestMaterialization {
    status evaluation { severity description } } } } } } } }"""
ASSETS = "{ assetNodes { assetKey { path } groupName } }"
DEMO_RUNS = """{ runsOrError(filter: {tags: [{key: "integration_assets/trigger", value: "demo"}]}) {
  ... on Runs { results { runId status jobName } } } }"""


def chromium_executable() -> str:
    """Debian's chromium (installed by `make setup`), or CHROMIUM_PATH. Missing: a failure under CI,
    a skip elsewhere."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if path:
        return path
    reason = (
        "no Chromium to drive: `make setup` installs Debian's `chromium` "
        "(apt-get install chromium), or set CHROMIUM_PATH to a Chromium binary"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The demo's state served by `integration-assets dev`, and a headless Chromium to look at it."""
    executable = chromium_executable()
    base = tmp_path_factory.mktemp("browser_ui")
    env, _ = run_demo(base, SCENARIO)
    with running_dev(env, SCENARIO, base / "dev.log") as port:
        # The first-visit "join the community" dialog would cover every page.
        graphql(port, "mutation { setNuxSeen }")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            try:
                yield port, browser
            finally:
                browser.close()


@pytest.fixture
def page(ui, tmp_path):
    """A fresh browser page on the UI. Nothing leaves the machine (the UI's telemetry script from
    the internet is refused), and a JavaScript error in the page fails the test."""
    port, browser = ui
    origin = f"http://127.0.0.1:{port}"
    context = _context(browser, origin)
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    yield page
    context.close()
    assert not page_errors, page_errors


def _context(browser: Browser, origin: str):
    context = browser.new_context(viewport=VIEWPORT, base_url=origin)
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(origin + "/") else route.abort()
        ),
    )
    context.set_default_timeout(60_000)
    return context


def _open(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"


def _expect_no_error(page: Page) -> None:
    expect(page.get_by_text(ERROR_TEXT)).to_have_count(0)


def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=tmp_path / name, full_page=True)
    wanted = os.environ.get("UI_SCREENSHOTS_DIR")
    if wanted:
        target = Path(wanted) if Path(wanted).is_absolute() else ROOT / wanted
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / name, target / name)


def _shown_as(name: str, label: str) -> bool:
    """The graph shortens a long name in the middle ('payment_…ciliation')."""
    if "…" not in label:
        return label == name
    head, tail = label.split("…", 1)
    return name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail)


def test_lineage_graph_shows_the_groups_and_the_layers_of_the_orders_pipeline(ui, page, tmp_path):
    groups: dict[str, list[list[str]]] = {}
    for node in graphql(ui[0], ASSETS)["assetNodes"]:
        groups.setdefault(node["groupName"], []).append(node["assetKey"]["path"])
    drawn_open = [path for group in OPEN_GROUPS for path in groups[group]]
    # The open groups hold every layer of the orders pipeline.
    assert {path[0] for path in drawn_open} >= {"raw", "staging", "core", "reporting"}

    expanded = ",".join(f"global@global:{group}" for group in OPEN_GROUPS)
    _open(page, "/asset-groups?" + urlencode({"expanded": expanded}))
    graph = page.locator(GRAPH)
    expect(graph.locator(ASSET_NAME).first).to_be_visible()
    # Hide the asset list beside the graph: the graph gets the width.
    page.locator("button:has([aria-label=panel_show_right])").filter(
        has_not_text="Hide navigation"
    ).click()
    _expect_no_error(page)

    expect(graph.locator(OPEN_GROUP_HEADER)).to_have_count(len(OPEN_GROUPS))
    for group in OPEN_GROUPS:
        expect(graph.locator(OPEN_GROUP_HEADER).filter(has_text=group).first).to_be_visible()
    collapsed = sorted(set(groups) - set(OPEN_GROUPS))
    expect(graph.locator(COLLAPSED_GROUP)).to_have_count(len(collapsed))
    for group in collapsed:
        expect(
            graph.locator(COLLAPSED_GROUP).filter(has_text=re.compile(rf"^{group}(\s|$)"))
        ).to_be_visible()

    labels = graph.locator(ASSET_NAME).all_inner_texts()
    assert len(labels) == len(drawn_open), labels
    unmatched = list(labels)
    for path in drawn_open:
        label = next((label for label in unmatched if _shown_as(path[-1], label)), None)
        assert label is not None, f"{'/'.join(path)} is not drawn: {labels}"
        unmatched.remove(label)

    # The gate's verdict is in the colours (they come with the live data, after the nodes):
    # raw/storefront/orders landed (green); staging/storefront/orders failed its blocking check and
    # the core tables behind it were not built (red).
    def drawn(name: str, colour: str):
        named = graph.locator(ASSET_NODE).filter(
            has=page.locator(ASSET_NAME, has_text=re.compile(rf"^{name}$"))
        )
        return named.locator(f"[style*='--color-background-{colour}']")

    expect(drawn("orders", "green")).to_have_count(1)
    expect(drawn("orders", "red")).to_have_count(1)
    expect(drawn("order_events", "red")).to_have_count(1)
    expect(drawn("orders_current", "red")).to_have_count(1)
    _screenshot(page, "ui-lineage.png", tmp_path)


def test_the_failed_blocking_check_shows_its_explanation(ui, page, tmp_path):
    checks = graphql(ui[0], CHECKS % json.dumps(list(STAGING_ORDERS.path)))
    checks = {c["name"]: c for c in checks["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    check = checks[CHECK_REQUIRED_FIELDS]
    latest = check["executionForLatestMaterialization"]
    # The state the page is about: a blocking check whose latest evaluation failed at ERROR.
    assert check["blocking"] and latest["status"] == "FAILED"
    assert latest["evaluation"]["severity"] == "ERROR"
    explanation = latest["evaluation"]["description"]
    assert "required field 'total_price' is missing" in explanation
    assert "renamed to 'total_price_amount'?" in explanation

    key = "/".join(STAGING_ORDERS.path)
    _open(
        page,
        f"/assets/{key}?" + urlencode({"view": "checks", "checkDetail": CHECK_REQUIRED_FIELDS}),
    )
    expect(page.get_by_text(explanation, exact=True)).to_be_visible()
    _expect_no_error(page)
    expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
    expect(page.get_by_text("Evaluation result")).to_be_visible()
    # "Failed" both in the list of the asset's checks and as the latest evaluation's result.
    expect(page.get_by_text("Failed", exact=True)).to_have_count(2)
    for name, other in checks.items():
        if name != CHECK_REQUIRED_FIELDS:
            assert other["executionForLatestMaterialization"]["status"] == "SUCCEEDED", name
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(checks) - 1)
    expect(page.get_by_text("batches_failed").first).to_be_visible()
    _screenshot(page, "ui-failed-check.png", tmp_path)


def test_the_run_list_shows_the_demos_runs(ui, page, tmp_path):
    runs = graphql(ui[0], DEMO_RUNS)["runsOrError"]["results"]
    # schema_drift.yaml, 3 polls: the first succeeds, the gate fails the two after the rename.
    assert [(r["jobName"], r["status"]) for r in runs] == [
        (JOB_NAME, "FAILURE"),
        (JOB_NAME, "FAILURE"),
        (JOB_NAME, "SUCCESS"),
    ]

    _open(page, "/runs")
    for run in runs:
        row = page.locator(RUN_ROW).filter(has=page.locator(f'a[href="/runs/{run["runId"]}"]'))
        expect(row).to_have_count(1)
        expect(row).to_contain_text(JOB_NAME)
        expect(row).to_contain_text(run["status"].title())  # "Failure", "Success"
        expect(row).to_contain_text("integration_assets/trigger: demo")
    _expect_no_error(page)
    _screenshot(page, "ui-runs.png", tmp_path)
