"""The Dagster UI of the published history, in a real browser (headless Debian Chromium driven by Playwright).

``dagster-webserver`` and ``dagster-daemon`` run on a copy of the published history (three coins, two dates run
through the whole graph) with the code location a user's machine loads (``workspace.yaml``, settings from
``HURACAN_CONFIG_DIR`` and ``HURACAN_HOME``, equal to the history's). Everything is read or clicked in the pages:

1. the global asset graph shows every asset of the definitions, each asset's Checks tab every check;
2. a published date's partitions show each coin materialized (``challenger_model``, date x symbol);
3. the charts of ``shadow_trades`` (``equity``) and ``challenger_model`` (``walk_forward_folds``), markdown with
   ``data:image/png`` images, render (every <img> complete, naturalWidth > 0) in the latest materialization of a
   BTCUSDT partition, and a planted copy with a broken data URI is caught by the same assertion;
4. a backfill launched through Materialize -> partitions -> Launch backfill completes (GraphQL only to wait);
5. the job page of ``symbol_day_job`` lists the runs the CLI runner started (``execute_in_process``).

Screenshots of every step go to ``test-artifacts/ui/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, AssetRecordsFilter, DagsterInstance, MetadataValue, RunsFilter

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import Settings
from huracan_assets_tests.integration.history import PUBLISHED_DATES, Published, copy_published
from huracan_assets_tests.integration.ui_browser import (
    ARTIFACTS,
    CHROMIUM,
    INSTALL_HINT,
    LOCATION,
    Dagster,
    UiHome,
    broken,
    chromium,
    graph_names_in_view,
    images_of,
    running_dagster,
    settings_through_env,
    ui_home,
)
from huracan_assets_tests.integration.ui_browser import screenshot as _screenshot

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]

DAY = PUBLISHED_DATES[-1]
CHART_KEY = f"{DAY}|BTCUSDT"  # the reference coin: its chart is the one an aggregate metadata entry shows too
CHARTS = {"shadow_trades": "equity", "challenger_model": "walk_forward_folds"}
BACKFILL_ASSET = "universe"  # day-only, cheap (ranks the files exchange's coins); two dates make a backfill
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SHOTS: list[Path] = []


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # imported once the browser is known installed

    return playwright_expect(locator)


@pytest.fixture(scope="session")
def browser_installed():
    """Skip (fail under CI) before the published history is built when Chromium or Playwright is missing."""
    missing = [] if CHROMIUM.exists() else [f"Chromium ({CHROMIUM})"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Python playwright")
    if missing:
        message = f"{' and '.join(missing)} missing: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(f"the UI browser test must run under CI; {message}", pytrace=False)
        pytest.skip(message)


@dataclass(frozen=True)
class Ui:
    dagster: Dagster
    home: UiHome
    published: Published
    settings: Settings
    browser: object

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home.dagster_home))


@pytest.fixture(scope="module")
def ui(browser_installed, golden_published, tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    published = copy_published(golden_published, root / "published")
    home = ui_home(published, root / "home")
    settings = published.settings()
    loaded = settings_through_env(home)
    assert loaded == settings, f"the code location would load other settings than the history's: {loaded}"
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    SHOTS.clear()
    with chromium() as browser, running_dagster(home) as dagster:
        yield Ui(dagster, home, published, settings, browser)
    print("\nUI screenshots:\n" + "\n".join(f"  {p}" for p in SHOTS))


@pytest.fixture
def page(ui):
    context = ui.browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def large_page(ui):
    """A large window at twice the pixel density: the whole graph in one view, its small labels legible."""
    # tall enough for the whole lineage at the graph's smallest zoom (16 assets in 8 groups)
    context = ui.browser.new_context(viewport={"width": 2000, "height": 2600}, device_scale_factor=2)
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def shot(page, name: str) -> Path:
    path = _screenshot(page, name, SHOTS)
    print(f"screenshot: {path}")
    return path


def _definitions(ui: Ui):
    graph = build_definitions(ui.settings).resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks: dict[str, set[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), set()).add(check.name)
    return assets, checks


# ------------------------------------------------------------------------------------------------ the tests
def test_the_global_asset_graph_shows_every_asset(ui, large_page):
    assets, _ = _definitions(ui)
    page = large_page
    page.goto(f"{ui.dagster.url}/asset-groups")
    page.get_by_text("Global asset lineage").first.wait_for()
    page.locator("[class*='AssetNode'], [class*='GroupNode']").first.wait_for()
    page.get_by_role("button", name="Hide navigation").click()
    clip = page.locator("foreignObject").first.evaluate(
        "fo => { let e = fo.ownerSVGElement; while (getComputedStyle(e).overflow !== 'hidden') e = e.parentElement;"
        " const r = e.getBoundingClientRect(); return [r.left, r.bottom]; }"
    )
    page.mouse.click(clip[0] + 30, clip[1] - 30, button="right")  # the canvas' menu (groups start collapsed)
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.locator("[class*='AssetNode_assetName']").first.wait_for()
    zoom_out = page.locator("button:has([aria-label=zoom_out])")
    seen: set[str] = set()
    best: tuple[int, bytes] = (-1, b"")
    for _ in range(10):  # zoom out until one view holds every node (the layout is taller than the window)
        page.wait_for_timeout(700)
        now = graph_names_in_view(page, assets)
        seen |= now
        if len(now) > best[0]:
            best = (len(now), page.screenshot(full_page=True))
        if now == assets:
            break
        zoom_out.click()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{len(SHOTS) + 1:02d}_asset_graph.png"
    path.write_bytes(best[1])
    SHOTS.append(path)
    print(f"screenshot: {path} ({best[0]} of {len(assets)} assets in one view)")
    assert seen == assets, f"not drawn in the global asset graph: {sorted(assets - seen)}"


def test_every_asset_check_is_on_its_assets_checks_tab(ui, page):
    _, checks = _definitions(ui)
    assert sum(len(c) for c in checks.values()) > 20  # the graph's checks, not a handful
    statuses = {}
    for asset, names in sorted(checks.items()):
        page.goto(f"{ui.dagster.url}/assets/{asset}?view=checks")
        heading = page.get_by_text(re.compile(r"^Checks \(\d+\)$")).first
        heading.wait_for()
        assert heading.inner_text() == f"Checks ({len(names)})", asset
        rows = page.locator("[class*='AssetChecks_checkRow']").filter(visible=True)
        expect(rows).to_have_count(len(names))  # the list is virtualized: wait until every row is drawn
        shot(page, f"checks_{asset}")
        shown = {}
        for row in rows.all():  # a long name is middle-truncated; its title is whole
            name = row.locator("[title]").first.get_attribute("title")
            shown[name] = row.inner_text().split("\n")[-1]
        assert set(shown) == names, f"{asset}: the Checks tab lists {sorted(shown)}, the definitions {sorted(names)}"
        statuses.update({f"{asset}.{name}": status for name, status in shown.items()})
    print(f"asset checks as the UI shows them: {statuses}")


def test_a_published_dates_partitions_show_each_coin_materialized(ui, page):
    page.goto(f"{ui.dagster.url}/assets/challenger_model?view=partitions")
    page.get_by_placeholder("Filter by date").fill(str(DAY))
    page.get_by_text(str(DAY), exact=True).first.click()
    page.wait_for_url(re.compile(rf"partition={DAY}"))
    status = {}
    for symbol in ui.settings.universe.symbols:
        row = page.locator("[class*='VirtualizedTable_row']").filter(has=page.get_by_text(symbol, exact=True))
        dot = row.locator("div[style*='border-radius: 100%']").first
        dot.wait_for()
        status[symbol] = dot.get_attribute("style")
    shot(page, f"partitions_challenger_model_{DAY}")
    # the partition list's colours: green materialized, red failed, blue materializing, gray missing
    assert all("accent-green" in style for style in status.values()), status


def _open_markdown(page, url: str, metadata_key: str):
    """The partition's latest materialization; the metadata entry's [Show Markdown] dialog (or the entry itself
    when the markdown is shown inline)."""
    page.goto(url)
    cell = page.locator("tr", has=page.get_by_text(metadata_key, exact=True)).first
    cell.wait_for()
    button = cell.get_by_text("[Show Markdown]")
    if button.count():
        button.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        return dialog
    return cell


@pytest.mark.parametrize("asset", sorted(CHARTS))
def test_the_charts_render_as_images(ui, page, asset):
    url = f"{ui.dagster.url}/assets/{asset}?view=partitions&partition={CHART_KEY}"
    markdown = _open_markdown(page, url, CHARTS[asset])
    images = images_of(markdown)
    shot(page, f"chart_{asset}_{CHARTS[asset]}")
    print(f"{asset}.{CHARTS[asset]} of {CHART_KEY}: {images}")
    assert images, f"no chart in {asset}'s {CHARTS[asset]} of {CHART_KEY}: {markdown.inner_text()[:500]}"
    assert not broken(images), f"broken charts in {asset}'s {CHARTS[asset]} of {CHART_KEY}: {broken(images)}"


def test_a_broken_chart_fails_the_same_assertion(ui, page):
    """A planted copy of the equity markdown whose data URI is corrupt, reported for another partition: the
    image assertion above must see it broken (so a passing chart test means the charts do render)."""
    asset, key = "shadow_trades", f"{PUBLISHED_DATES[0]}|SOLUSDT"
    instance = ui.instance()
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[CHART_KEY]), limit=1
    ).records
    good = record.asset_materialization.metadata[CHARTS[asset]].value
    bad = re.sub(r"(data:image/png;base64,)[A-Za-z0-9+/=]{40}", r"\1AAAAnot-a-png", good)
    assert bad != good and "base64,AAAAnot-a-png" in bad
    instance.report_runless_asset_event(
        AssetMaterialization(asset, partition=key, metadata={CHARTS[asset]: MetadataValue.md(bad)})
    )
    instance.dispose()
    markdown = _open_markdown(page, f"{ui.dagster.url}/assets/{asset}?view=partitions&partition={key}", CHARTS[asset])
    images = images_of(markdown)
    shot(page, f"chart_{asset}_planted_broken")
    assert images and broken(images) == images, f"the planted broken chart was not caught: {images}"


def test_the_job_page_lists_the_cli_runners_runs(ui, page):
    instance = ui.instance()
    runs = instance.get_runs(RunsFilter(job_name="symbol_day_job"))
    instance.dispose()
    assert len(runs) >= len(PUBLISHED_DATES)  # the daily loop's ranged runs, one per date
    page.goto(f"{ui.dagster.url}/locations/{LOCATION}/jobs/symbol_day_job/runs")
    page.get_by_text(re.compile(r"^(No runs found|View)$")).first.wait_for()
    page.wait_for_timeout(500)
    shot(page, "job_symbol_day_job_runs")
    listed = [r.run_id[:8] for r in runs if page.get_by_text(r.run_id[:8], exact=True).count()]
    tags = {k: v for k, v in runs[0].tags.items() if k.startswith(".dagster")}
    assert len(listed) == len(runs), (
        f"the job page lists {len(listed)} of the {len(runs)} runs of symbol_day_job "
        f"(their .dagster tags: {tags}; the UI lists a job's runs by the .dagster/repository tag)"
    )


BACKFILL_QUERY = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status error { message } runs(limit: 20) { id status } }
  ... on PythonError { message } } }"""
RUN_ERRORS_QUERY = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status
  eventConnection(afterCursor: null) { events { __typename
    ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on RunFailureEvent { message runError: error { message } } } } } } }"""


def _backfill_errors(dagster: Dagster, backfill: dict) -> str:
    """The backfill and its runs' failures, for the assertion's message."""
    lines = [f"backfill: {backfill}"]
    for run in backfill.get("runs") or []:
        try:
            answer = dagster.graphql(RUN_ERRORS_QUERY, {"id": run["id"]})["runOrError"]
            failures = [e for e in answer["eventConnection"]["events"] if "Failure" in e["__typename"]]
        except Exception as exc:  # the message must not hide the backfill's own failure
            failures = [f"(could not read the run's events: {exc})"]
        lines += [f"run {run['id']} {run['status']}: {failure}" for failure in failures]
    return "\n".join(lines) + "\n" + dagster.tails(2000)


def test_a_backfill_launched_from_the_ui_completes(ui, page):
    page.goto(f"{ui.dagster.url}/assets/{BACKFILL_ASSET}")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Partition selection").wait_for()
    partitions = dialog.get_by_role("textbox").first  # the partition selection: keys and [first...last] ranges
    partitions.wait_for()
    show_all = dialog.get_by_text("Show all partitions")
    if show_all.count():  # the dialog starts on the last 90 days
        show_all.click()
    partitions.fill(f"[{PUBLISHED_DATES[0]}...{PUBLISHED_DATES[-1]}]")
    partitions.press("Enter")
    dialog.get_by_text(f"{len(PUBLISHED_DATES)} partitions", exact=True).wait_for()
    shot(page, f"backfill_{BACKFILL_ASSET}_dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    created = page.get_by_text(re.compile(r"Created backfill \w+")).first
    created.wait_for()
    backfill_id = created.inner_text().split()[-1]
    page.goto(f"{ui.dagster.url}/runs/b/{backfill_id}")

    deadline, backfill = time.monotonic() + 300, {}
    while time.monotonic() < deadline:  # GraphQL only to wait; the outcome is read in the page below
        backfill = ui.dagster.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill.get("status") in TERMINAL:
            break
        time.sleep(3)
    page.reload()
    page.get_by_text("Partition selection").first.wait_for()
    page.wait_for_timeout(1000)
    shot(page, f"backfill_{BACKFILL_ASSET}_done")
    assert backfill.get("status") == "COMPLETED_SUCCESS", _backfill_errors(ui.dagster, backfill)
    badge = page.locator("span").filter(has_text=re.compile(r"^Succeeded$"))  # the column header is a link
    status = page.locator("div").filter(has=page.get_by_text("Status", exact=True)).filter(has=badge).last
    assert status.inner_text().split() == ["Status", "Succeeded"], status.inner_text()
    assert page.get_by_text("100% completed").count() == 1
