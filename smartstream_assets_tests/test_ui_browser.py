"""The Dagster UI as a person uses it, in headless chromium (Playwright, Debian's binary),
on the production instance: ``make demo`` materialises the graph into PostgreSQL, then
``dagster dev`` (webserver + daemon, the project's workspace.yaml) serves it.

One module-scoped setup for every test (the demo takes minutes): a new database on the
session's PostgreSQL, a DAGSTER_HOME written by ``instance_config.write_instance``, the
demo in a subprocess, ``dagster dev`` in a process group of its own. Each step's
screenshot is kept in ``$SMARTSTREAM_TEST_ARTIFACTS/ui/`` (else the project's
``.smartstream/test-artifacts/ui/``), with dagster dev's and the demo's output.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from smartstream_assets.definitions import defs
from smartstream_assets.instance_config import PASSWORD_ENV, write_instance
from smartstream_assets.lake import PROJECT_ROOT

from .browser import DagsterDev, artifacts_dir, chromium_browser, ensure_chromium, screenshot, venv_bin
from .helpers import fresh_project_env
from .postgres import postgres_server  # noqa: F401  (the session fixture)

# the demo, the UI and the runs it launches take minutes on a shared machine; the
# module's setup is paid by its first test
pytestmark = pytest.mark.timeout(1500)

LOCATION = "smartstream_assets"  # workspace.yaml's python_module
# the demo's quicker models (test_demo.py's, plus 2-trial searches for reviews and attrition:
# test_the_approval_... trains the same candidate again, which the gate then holds)
ATTRITION_CANDIDATE = {"trials": 4, "estimators": ["xgboost"]}  # passes the 0.70 bar on the sample in key order
DEMO_OPS = {
    "reviews__absa_candidate": {"fine_tune_epochs": 1, "fine_tune_rows": 300, "trials": 2},
    "vitals__sepsis_candidate": {"trials": 2},
    "employees__attrition_candidate": ATTRITION_CANDIDATE,
}
DEMO_RUNS = 12  # as test_demo.py counts them: 6 ingestions, the ML graph, 4 scorings, the vitals stream
# employees' candidate and gate, in-process on the instance of $DAGSTER_HOME (as the demo runs them)
RETRAIN = """
import json, sys
import dagster as dg
from smartstream_assets.definitions import defs
keys = [dg.AssetKey(["employees", "attrition_candidate"]), dg.AssetKey(["employees", "attrition_champion"])]
with dg.DagsterInstance.get() as instance:
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(*keys), instance=instance,
                            resources=defs.resources, run_config=json.loads(sys.argv[1]), raise_on_error=False)
sys.exit(0 if result.success else 1)
"""
MATERIALIZE = re.compile(r"(^|\s)Materialize$")  # the button's name follows its icon's label
WAIT_MS = 90_000  # a page or an element on the shared 2-core machine
RUN_TIMEOUT = 420.0  # a run queued, launched by the daemon, executed in its own processes
GRAPH = defs.resolve_asset_graph()
GROUPS = sorted({GRAPH.get(key).group_name for key in GRAPH.get_all_asset_keys()})


@dataclass
class UI:
    url: str
    dev: DagsterDev
    home: Path
    root: Path
    env: dict
    tracking_uri: str
    shots: Path
    browser: object

    def instance(self) -> dg.DagsterInstance:
        """The production instance (PostgreSQL) the UI serves, as the tests see it."""
        return dg.DagsterInstance.from_config(str(self.home))

    def shot(self, page, step: str) -> Path:
        return screenshot(page, self.shots, step)


def _say(request, line: str) -> None:
    """A line on the terminal whatever the capture mode."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line)


@pytest.fixture(scope="module")
def ui(request, tmp_path_factory, postgres_server):  # noqa: F811
    ensure_chromium()  # before minutes of setup: fails now if there is no browser
    started = time.monotonic()
    shots = artifacts_dir(PROJECT_ROOT)
    for stale in (*shots.glob("*.png"), *shots.glob("*.log")):  # the folder shows this run only
        stale.unlink()
    _say(request, f"\nUI screenshots and logs: {shots}")
    root = tmp_path_factory.mktemp("ui")
    database = f"dagster_ui_{uuid.uuid4().hex[:10]}"
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE DATABASE {database}")
    home = root / "dagster_home"
    write_instance(home, host=postgres_server.host, port=postgres_server.port, user=postgres_server.user, db=database)
    # the production instance as written: no password in the file, no "Join the community" modal
    written = (home / "dagster.yaml").read_text()
    assert "QueuedRunCoordinator" in written and "nux:\n  enabled: false" in written
    assert postgres_server.password not in written
    env = fresh_project_env(root)
    env.update(
        DAGSTER_HOME=str(home),
        **{PASSWORD_ENV: postgres_server.password},
        SMARTSTREAM_DEMO_OPS_CONFIG=json.dumps(DEMO_OPS),
        OMP_WAIT_POLICY="PASSIVE",
    )

    demo = subprocess.run(
        [sys.executable, "-m", "smartstream_assets.demo"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1000
    )  # fmt: skip
    (shots / "demo.log").write_text(demo.stdout + "\n--- stderr ---\n" + demo.stderr)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    demo_seconds = time.monotonic() - started

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_ENV, postgres_server.password)  # the instance loads it from the environment
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            runs = instance.get_runs()
            assert len(runs) == DEMO_RUNS, [r.run_id for r in runs]
            assert all(run.is_success for run in runs), [(r.run_id, r.status) for r in runs if not r.is_success]
        # the rows really are in PostgreSQL, in this test's database
        import psycopg

        with psycopg.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                             password=postgres_server.password, dbname=database, autocommit=True) as conn:  # fmt: skip
            assert conn.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'").fetchone()[0] == DEMO_RUNS
            assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == DEMO_RUNS

        dev = DagsterDev(venv_bin("dagster"), PROJECT_ROOT, env, shots / "dagster-dev.log")
        dev.start(timeout=300)
        try:
            entries = dev.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
            assert [e["name"] for e in entries["workspaceOrError"]["locationEntries"]] == [LOCATION]
            _say(request, f"UI setup: demo on PostgreSQL {demo_seconds:.0f}s, dagster dev ready after "
                          f"{time.monotonic() - started - demo_seconds:.0f}s more, on {dev.url}")  # fmt: skip
            with chromium_browser() as browser:
                yield UI(
                    url=dev.url, dev=dev, home=home, root=root, env=env, tracking_uri=env["MLFLOW_TRACKING_URI"],
                    shots=shots, browser=browser,
                )  # fmt: skip
        finally:
            dev.stop()


@pytest.fixture
def page(ui, request):
    """A fresh browser context (no remembered launchpad config) and page; its last state
    is kept as ``<test>-end.png``."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = ui.browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield page
    try:
        ui.shot(page, f"{request.node.name}-end")
    finally:
        context.close()


# ------------------------------------------------------------------------------ helpers


def wait_for(what: str, probe, timeout: float, every: float = 1.0):
    """``probe()`` until it returns something truthy (returned); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def finished_run(ui: UI, run_id: str) -> dg.DagsterRun:
    """The run once it has finished (success, failure or canceled)."""

    def probe():
        with ui.instance() as instance:
            run = instance.get_run_by_id(run_id)
        return run if run is not None and run.is_finished else None

    return wait_for(f"run {run_id} to finish", probe, RUN_TIMEOUT, every=2.0)


def event_types(ui: UI, run_id: str) -> list:
    with ui.instance() as instance:
        return [e.dagster_event.event_type for e in instance.all_logs(run_id) if e.dagster_event]


def expect_run_page_success(ui: UI, page, run_id: str, step: str) -> None:
    """The run's page says Success, and its log shows RUN_SUCCESS."""
    from playwright.sync_api import expect

    if f"/runs/{run_id}" not in page.url:
        page.goto(f"{ui.url}/runs/{run_id}")
    expect(page.get_by_text(run_id[:8], exact=True).first).to_be_visible()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()
    ui.shot(page, step)


def middle_truncated(label: str, name: str) -> bool:
    """``label`` is ``name`` as the UI shows it: whole, or with its middle elided."""
    if label == name:
        return True
    head, sep, tail = label.partition("…")
    return bool(sep) and name.startswith(head) and name.endswith(tail) and len(head) + len(tail) < len(name)


# -------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("group", GROUPS)
def test_the_group_graph_shows_every_asset_with_a_distinct_name(ui, page, group):
    from playwright.sync_api import expect

    keys = sorted(k for k in GRAPH.get_all_asset_keys() if GRAPH.get(k).group_name == group)
    names = {key: key.path[-1] for key in keys}  # what the UI labels a node with
    # the group's page also links the assets of other groups its assets depend on or feed
    outside = sorted(
        {n for key in keys for n in (*GRAPH.get(key).parent_keys, *GRAPH.get(key).child_keys) if GRAPH.get(n).group_name != group}
    )
    # wide enough that the graph fits at full size (below ~0.5x the UI draws name-only boxes)
    page.set_viewport_size({"width": 3000, "height": 1600})
    page.goto(f"{ui.url}/locations/{LOCATION}/asset-groups/{group}/lineage")
    nodes = page.locator("svg foreignObject [data-tooltip]")  # a node's name (the tooltip: untruncated)
    links = page.locator("svg foreignObject span.label")  # a link to an asset of another group
    expect(nodes).to_have_count(len(keys))
    expect(links).to_have_count(len(outside))
    ui.shot(page, f"1-group-{group}-lineage")
    shown = [(n.inner_text().strip(), n.get_attribute("data-tooltip")) for n in nodes.all()]
    shown_links = [(n.inner_text().strip(), n.get_attribute("title")) for n in links.all()]

    # every asset of the group, by its name (a long one may be shown with its middle elided)
    unmatched = list(shown)
    for key, name in names.items():
        match = next((s for s in unmatched if s[1] == name and middle_truncated(s[0], name)), None)
        assert match is not None, f"{group}: {key.to_user_string()} is not shown as {name!r}; shown: {shown}"
        unmatched.remove(match)
    assert not unmatched, f"{group}: nodes of no asset of the group: {unmatched}"
    expected_links = sorted(key.path[-1] for key in outside)
    assert sorted(title for _, title in shown_links) == expected_links, shown_links

    # a person tells the assets apart by their labels: no two show the same one (reviews'
    # graph shows reviews_labelled/current and a link to the live table's, which its
    # asset_label names reviews/live_current)
    everything = {key.to_user_string(): key.path[-1] for key in (*keys, *outside)}
    labels = Counter(everything.values())
    clashes = {label: [k for k, v in everything.items() if v == label] for label, count in labels.items() if count > 1}
    assert not clashes, (
        f"group {group}: the lineage page shows these labels for more than one asset (in the group or "
        f"linked from another group): {clashes}"
    )


def test_an_asset_page_shows_its_metadata_and_a_plot_in_the_markdown_dialog(ui, page):
    from playwright.sync_api import expect

    current = dg.AssetKey(["employees", "current"])
    dashboard = dg.AssetKey(["employees", "dashboard"])
    with ui.instance() as instance:
        meta = instance.get_latest_materialization_event(current).asset_materialization.metadata
        plot_md = instance.get_latest_materialization_event(dashboard).asset_materialization.metadata["dashboard"].value
    rows = meta["dagster/row_count"].value
    assert rows > 1000

    page.goto(f"{ui.url}/assets/employees/current")
    expect(page.get_by_text("Row count", exact=True)).to_be_visible()
    expect(page.get_by_text(f"{rows:,}", exact=True).first).to_be_visible()
    for name in ("changes_applied", "deleted_keys", "delta_version"):
        row = page.get_by_role("row", name=re.compile(rf"^{name}\b"))
        expect(row).to_contain_text(str(meta[name].value))
    ui.shot(page, "2-asset-employees-current-metadata")

    # the dashboard's metadata holds a PNG in markdown: "[Show Markdown]" opens it
    src = re.search(r"\((data:image/png;base64,[A-Za-z0-9+/=]+)\)", plot_md).group(1)
    assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    page.goto(f"{ui.url}/assets/employees/dashboard")
    entry = page.get_by_role("row", name=re.compile(r"^dashboard\b"))
    expect(entry).to_contain_text("[Show Markdown]")
    entry.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator("img[src^='data:image/png']")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("src", src)  # the very image the asset recorded
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > 300 and height > 100  # decoded by the browser, not a broken image
    ui.shot(page, "2-asset-employees-dashboard-plot")


def test_materialize_on_a_downstream_asset_launches_a_run_that_succeeds(ui, page):
    from playwright.sync_api import expect

    key = dg.AssetKey(["employees", "headcount_forecast"])  # downstream of employees/trusted, ~2 s of work
    with ui.instance() as instance:
        before = instance.get_latest_materialization_event(key)
    page.goto(f"{ui.url}/assets/employees/headcount_forecast")
    button = page.get_by_role("button", name=MATERIALIZE)
    expect(button).to_be_enabled()
    ui.shot(page, "3-materialize-headcount_forecast-before")
    button.click()
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    expect(toast).to_be_visible()
    ui.shot(page, "3-materialize-headcount_forecast-launched")  # before the toast fades
    short = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)

    def launched():
        with ui.instance() as instance:
            return next((r for r in instance.get_runs(limit=20) if r.run_id.startswith(short)), None)

    run = wait_for(f"run {short} in the instance", launched, 60)
    assert run.asset_selection == {key} and run.tags.get("dagster/from_ui") == "true"
    run = finished_run(ui, run.run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    # queued by the UI, launched by the daemon's queue, then executed
    types = event_types(ui, run.run_id)
    E = dg.DagsterEventType
    assert types.index(E.RUN_ENQUEUED) < types.index(E.RUN_STARTING) < types.index(E.RUN_START) < types.index(E.RUN_SUCCESS)
    with ui.instance() as instance:
        after = instance.get_latest_materialization_event(key)
    assert after.run_id == run.run_id and after.run_id != before.run_id
    expect_run_page_success(ui, page, run.run_id, "3-materialize-headcount_forecast-run-success")


def test_the_approval_launchpad_asks_who_approves_and_approving_moves_the_champion(ui, page):
    import mlflow
    from playwright.sync_api import expect

    from smartstream_assets.domains.employees import ATTRITION

    model = ATTRITION.registered_model
    client = mlflow.MlflowClient(tracking_uri=ui.tracking_uri)
    champion_before = str(client.get_model_version_by_alias(model, "champion").version)
    # where a person stands: the same data trains an equally good candidate, which the gate
    # holds because replacing a champion needs approval (the demo's config, on this instance)
    gate = dg.AssetKey(["employees", "attrition_champion"])
    retrain = subprocess.run(
        [sys.executable, "-c", RETRAIN, json.dumps({"ops": {"employees__attrition_candidate": {"config": ATTRITION_CANDIDATE}}})],
        cwd=PROJECT_ROOT, env=ui.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert retrain.returncode == 0, retrain.stdout[-2000:] + retrain.stderr[-3000:]
    with ui.instance() as instance:
        decided = instance.get_latest_materialization_event(gate).asset_materialization.metadata
    assert decided["status"].value == "held for approval", decided["reasons"].value
    held = str(decided["candidate_version"].value)
    assert held != champion_before
    assert str(client.get_model_version_by_alias(model, "champion").version) == champion_before

    page.goto(f"{ui.url}/assets/employees/attrition_approval")
    button = page.get_by_role("button", name=MATERIALIZE)
    expect(button).to_be_enabled()
    button.click()
    # approved_by has no default: Materialize opens the launchpad, which says what is missing
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launchpad (configure assets)")).to_be_visible()
    expect(dialog.get_by_text('Missing required config entry "approved_by"')).to_be_visible()
    launch = dialog.get_by_role("button", name=MATERIALIZE)
    expect(launch).to_be_disabled()
    ui.shot(page, "4-approval-launchpad-missing-approved_by")
    config = (
        "ops:\n"
        "  employees__attrition_approval:\n"
        "    config:\n"
        '      approved_by: "dana (UI test)"\n'
        f'      version: "v{held}"\n'
        '      note: "checked in the launchpad"\n'
    )
    dialog.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(config)  # as pasted: the editor's auto-indent stays out of it
    expect(dialog.get_by_text("No errors")).to_be_visible()
    expect(launch).to_be_enabled()
    ui.shot(page, "4-approval-launchpad-filled")
    launch.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)
    ui.shot(page, "4-approval-run-launched")

    run = finished_run(ui, run_id)
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert run.asset_selection == {dg.AssetKey(["employees", "attrition_approval"])}
    assert run.run_config["ops"]["employees__attrition_approval"]["config"]["approved_by"] == "dana (UI test)"
    champion = client.get_model_version_by_alias(model, "champion")
    assert str(champion.version) == held
    assert champion.tags["smartstream.approved_by"] == "dana (UI test)"
    assert champion.tags["smartstream.approval_note"] == "checked in the launchpad"
    expect_run_page_success(ui, page, run_id, "4-approval-run-success")
    page.goto(f"{ui.url}/assets/employees/attrition_approval")
    expect(page.get_by_role("row", name=re.compile(r"^approved_by\b"))).to_contain_text("dana (UI test)")
    ui.shot(page, "4-approval-asset-approved")


def test_switching_a_sensor_on_in_the_ui_produces_ticks(ui, page):
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType, TickStatus
    from playwright.sync_api import expect

    name = "employees_raw_sensor"

    def state():
        with ui.instance() as instance:
            found = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.instigator_name == name]
            return found[0] if found else None

    def ticks(s):
        with ui.instance() as instance:
            return instance.get_ticks(s.instigator_origin_id, s.selector_id)

    before = state()
    assert before is None or before.status != InstigatorStatus.RUNNING  # sensors start off
    page.goto(f"{ui.url}/locations/{LOCATION}/sensors/{name}")
    running = page.get_by_role("row").filter(has=page.get_by_text("Running", exact=True))
    switch = running.get_by_role("checkbox")
    expect(switch).not_to_be_checked()
    expect(page.get_by_text("Sensor has never run")).to_be_visible()
    ui.shot(page, "5-sensor-off")
    running.locator("label").click()  # the switch: its input is hidden behind the drawn toggle
    expect(switch).to_be_checked()

    on = wait_for(f"{name} running in the instance", lambda: (s := state()) and s.status == InstigatorStatus.RUNNING and s, 30)
    # the daemon evaluates it: a tick that finished (the demo ingested every raw object: nothing to request)
    done = wait_for(
        f"a finished tick of {name}",
        lambda: [t for t in ticks(on) if t.status in (TickStatus.SKIPPED, TickStatus.SUCCESS, TickStatus.FAILURE)],
        150, every=2.0,
    )  # fmt: skip
    assert all(t.status != TickStatus.FAILURE for t in done), [t.error for t in done if t.error]
    expect(page.get_by_text("Sensor has never run")).to_have_count(0)
    expect(page.get_by_text("0 runs requested").first).to_be_visible()
    ui.shot(page, "5-sensor-on-ticked")

    running.locator("label").click()
    expect(switch).not_to_be_checked()
    wait_for(f"{name} stopped in the instance", lambda: (s := state()) and s.status == InstigatorStatus.STOPPED, 30)
    ui.shot(page, "5-sensor-off-again")


# a Python warning as printed: "<file>.py:<line>: <Category>: <message>"
PY_WARNING = re.compile(r"^(?P<path>\S+?\.py):\d+: (?P<category>\w*Warning): (?P<message>.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# warnings of the Dagster/Python machinery that definitions trigger (beta, preview,
# deprecated, superseded APIs)
API_WARNINGS = {"DeprecationWarning", "PendingDeprecationWarning", "FutureWarning", "BetaWarning", "PreviewWarning",
                "SupersessionWarning", "ExperimentalWarning"}  # fmt: skip
# dagster's own CLI about itself (`dagster dev` will be `dg dev`): not the code location's
NOT_OURS = (re.compile(r"SupersessionWarning: Function `dev_command` is superseded"),)


def ours(line: str) -> bool:
    """A warning line that smartstream's code (or its use of an API) causes."""
    if any(p.search(line) for p in NOT_OURS):
        return False
    found = PY_WARNING.match(line)
    if found:
        return "smartstream" in line or found["category"] in API_WARNINGS
    return bool(re.search(r"warn", line, re.IGNORECASE) and "smartstream" in line)


def test_dagster_dev_starts_without_warnings_of_ours(ui):
    output = ANSI.sub("", ui.dev.output())
    assert "Serving dagster-webserver on" in output
    lines = output.splitlines()
    warnings_seen = [line for line in lines if PY_WARNING.match(line) or " - WARNING - " in line]
    print("warnings in dagster dev's output:\n" + "\n".join(warnings_seen))
    # the classifier itself: the BetaWarning our definitions caused before its filter (fixed), a
    # warning raised in our file; not dagster's own notice about its CLI
    assert ours("/x/dagster/_core/decorator_utils.py:232: BetaWarning: Parameter `backfill_policy` of function `asset` is currently in beta")
    assert ours("/work/main/smartstream_assets/sensors.py:40: UserWarning: something")
    assert not ours(".venv/lib/python3.11/site-packages/click/core.py:911: SupersessionWarning: Function `dev_command` is superseded and its usage is discouraged. Use 'dg dev' instead.")
    offending = [line for line in lines if ours(line)]
    assert not offending, "\n".join(offending)
