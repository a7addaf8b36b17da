"""Real browser tests: headless Chromium (Debian's `chromium`) driven by Playwright.

- The MLflow dashboard, served by a real `mlflow server` over the store the pipeline just
  filled, shows the run's name, its `train_cost` chart and its `test_accuracy`, and the
  runs table shows the run's two datasets. Its Models tab lists the logged model of each
  run of a sweep, and the registry version of the best.
- The `dvc plots show` page, written outside the repository, renders its plots with the
  network cut off: its template (vendor/vega/dvc-plots.html, set in .dvc/config) has the
  vendored vega scripts inlined.
- `dvc plots diff` of two experiments draws both cost curves on one chart, offline too.
- After `sweep=peers`, MLflow's compare view shows one fold's network run beside its four
  scikit-learn peers, their test accuracies in one row.

The tests save screenshots (mlflow-run.png, mlflow-runs.png, mlflow-peers.png,
mlflow-models.png, dvc-plots.png) to the folder named by DIGITS_NN_SCREENSHOTS, else to a
temporary folder, so that running the suite leaves the working tree as it was.
`make screenshots` points it at docs/img/.
Playwright only drives the browser here: `playwright install` is never needed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers import dvc, mlflow_runs, run_app

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_NAME = "h30-a0.25-i3000-s0"
VIEWPORT = {"width": 1400, "height": 1050}
# The colours DVC's linear template gives the first and second revisions' curves.
DVC_FIRST_COLOUR = (0x94, 0x5D, 0xD6)
DVC_SECOND_COLOUR = (0x13, 0xAD, 0xC7)


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """<name> in $DIGITS_NN_SCREENSHOTS (docs/img/ under `make screenshots`), else in
    tmp_path."""
    folder = Path(os.environ.get("DIGITS_NN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


class Requests:
    """Lets the browser reach `allowed` URL prefixes only; records and aborts the rest."""

    def __init__(self, *allowed: str) -> None:
        self.allowed = allowed
        self.blocked: list[str] = []

    def __call__(self, route) -> None:
        url = route.request.url
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)")
    with sync_playwright() as playwright:
        # Playwright gives the browser a fresh temporary profile (--user-data-dir).
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True, timeout=60_000
        )
        try:
            yield instance
        finally:
            instance.close()


# --- the MLflow dashboard ----------------------------------------------------------------


def dashboard_page(browser, url: str, viewport: dict[str, int] = VIEWPORT):
    """A page that may reach the MLflow server at ``url`` only; (page, requests)."""
    requests = Requests(url)
    context = browser.new_context(viewport=viewport)
    # Cosmetic only: keep MLflow's assistant panel closed so it does not cover the page.
    context.add_init_script(
        "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    )
    context.route("**/*", requests)
    context.set_default_timeout(45_000)
    return context.new_page(), requests


def test_mlflow_run_page_shows_name_cost_chart_and_accuracy(
    reproduced: Path, mlflow_server, browser, tmp_path: Path
) -> None:
    metrics = json.loads((reproduced / "reports/metrics.json").read_text())
    client, runs = mlflow_runs(reproduced)
    [run] = [r for r in runs if r.info.run_name == RUN_NAME and r.info.status == "FINISHED"]
    experiment_id = run.info.experiment_id
    assert client.get_metric_history(run.info.run_id, "train_cost"), "no cost curve logged"

    url = mlflow_server(f"sqlite:///{reproduced / 'mlflow.db'}", reproduced)
    page, requests = dashboard_page(browser, url)
    context = page.context
    run_page = f"{url}/#/experiments/{experiment_id}/runs/{run.info.run_id}"

    # Overview: the run's name as its title, and the metrics table with test_accuracy.
    page.goto(run_page)
    page.get_by_role("heading", name=RUN_NAME).wait_for()
    metrics_table = page.locator("table, [role=table]").filter(has_text="test_accuracy").first
    metrics_table.wait_for()
    overview = page.inner_text("body")
    # The overview lists each metric's latest value as JavaScript prints the float,
    # which is the shortest round-trip form, the same as Python's repr.
    assert repr(metrics["test_accuracy"]) in overview
    assert "train_cost" in overview

    # Model metrics: one chart per metric; train_cost is a line with a point per step.
    # workflowType=machine_learning shows the page under "Model training" rather than
    # MLflow 3's default GenAI navigation; the charts are the same in both.
    page.goto(f"{run_page}/model-metrics?workflowType=machine_learning")
    card = page.locator("[data-testid=experiment-view-compare-runs-card]").filter(
        has=page.get_by_text("train_cost", exact=True)
    )
    line = card.locator(".js-line").first
    line.wait_for()
    points = line.get_attribute("d") or ""
    assert points.count("L") >= 10, f"train_cost chart has no curve: {points!r}"
    assert page.get_by_text(RUN_NAME).first.is_visible()
    card_text = card.inner_text()
    assert "Step" in card_text and RUN_NAME in card_text
    charts = page.locator("[data-testid=experiment-view-compare-runs-card]")
    assert charts.filter(has=page.get_by_text("test_accuracy", exact=True)).count() == 1
    page.wait_for_timeout(500)  # let the charts finish their transitions
    page.screenshot(path=screenshot_path("mlflow-run.png", tmp_path))

    # The runs table: the Dataset column names the run's train and test sets by their
    # digest, the run's data_md5.
    runs_page = f"{url}/#/experiments/{experiment_id}/runs"
    page.goto(f"{runs_page}?workflowType=machine_learning&compareRunsMode=TABLE")
    digest = run.data.tags["data_md5"]
    datasets = page.get_by_test_id("open-dataset-drawer")
    datasets.filter(has_text=f"digits-train ({digest})").first.wait_for()
    table = page.inner_text("body")
    assert f"digits-test ({digest})" in table and "Training" in table and "Testing" in table

    # The experiment's runs beside their metric charts.
    page.goto(f"{runs_page}?workflowType=machine_learning&compareRunsMode=CHART")
    page.get_by_role("link", name=RUN_NAME).first.wait_for()
    page.locator(".js-line").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=screenshot_path("mlflow-runs.png", tmp_path))

    assert requests.blocked == [], f"the dashboard tried to leave 127.0.0.1: {requests.blocked}"
    context.close()


def test_mlflow_models_tab_lists_each_runs_logged_model_and_its_registry_version(
    clone: Path, mlflow_server, browser, tmp_path: Path
) -> None:
    """MLflow 3's Models tab: one logged model per child run of a validated
    sweep, each beside the run it came from and its figures on the run's datasets, and
    the best one beside its registry version."""
    run_app(
        clone,
        "-m",
        "train.validation_size=0.2",
        "train.alpha=0.5,2.0",
        "train.iterations=40",
        "hydra.sweep.dir=multirun/models",
    )
    client, runs = mlflow_runs(clone)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    experiment_id = children[0].info.experiment_id
    models = client.search_logged_models([experiment_id])
    assert len(models) == len(children) == 2
    version = client.get_model_version_by_alias("digits-nn", "challenger")
    best = client.get_run(version.run_id).info.run_name

    url = mlflow_server(f"sqlite:///{clone / 'mlflow.db'}", clone)
    page, requests = dashboard_page(browser, url, {"width": 2000, "height": 700})
    context = page.context
    page.goto(f"{url}/#/experiments/{experiment_id}/models?workflowType=machine_learning")
    for child in children:  # the Source run column names each run
        page.get_by_text(child.info.run_name, exact=True).first.wait_for()
    assert page.get_by_text("Ready", exact=True).count() == len(models)
    row = page.locator("[role=row]").filter(has_text=best)
    assert row.count() >= 1 and "digits-nn" in row.first.inner_text()
    assert f"v{version.version}" in row.first.inner_text()
    headers = " ".join(page.locator("[role=columnheader]").all_inner_texts())
    for name in ("test_accuracy", "train_accuracy", "digits-test", "digits-train"):
        assert name in headers, headers
    page.wait_for_timeout(500)
    page.screenshot(path=screenshot_path("mlflow-models.png", tmp_path))
    assert requests.blocked == [], f"the dashboard tried to leave 127.0.0.1: {requests.blocked}"
    context.close()


# --- dvc plots show, offline ----------------------------------------------------------------


def pixels(page, selector: str, colour=DVC_FIRST_COLOUR) -> tuple[int, int]:
    """What the element looks like on screen, whether vega drew it on a canvas or as an
    svg: how many pixels are not white, and how many have the colour of a curve."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")
    rgb = np.asarray(image, dtype=int).reshape(-1, 3)
    drawn = int((rgb < 250).any(axis=1).sum())
    coloured = int((np.abs(rgb - np.array(colour)).sum(axis=1) < 40).sum())
    return drawn, coloured


def open_offline(browser, page_path: Path):
    """Open a file:// page with every other request aborted; returns (page, requests)."""
    requests = Requests("file://")
    context = browser.new_context(viewport=VIEWPORT)
    context.route("**/*", requests)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def test_dvc_plots_show_renders_offline_outside_the_repository(
    reproduced: Path, browser, tmp_path: Path
) -> None:
    index = tmp_path / "elsewhere" / "index.html"
    shown = dvc("plots", "show", "-o", str(index.parent), cwd=reproduced).stdout
    assert index.as_uri() in shown
    html = index.read_text()
    assert "cdn.jsdelivr.net" not in html, "DVC's default CDN template was used"
    assert "<script src=" not in html, "the page loads its scripts from files"

    page, requests, errors = open_offline(browser, index)
    page.locator("#Cost_curve.vega-embed .marks").first.wait_for()
    page.wait_for_function("document.querySelectorAll('div[id].vega-embed .marks').length >= 2")
    page.wait_for_timeout(500)  # vega draws on the next animation frame
    cost_curve = pixels(page, "#Cost_curve .marks")
    confusion = pixels(page, "#Confusion_matrix .marks")
    page.screenshot(path=screenshot_path("dvc-plots.png", tmp_path), full_page=True)

    assert requests.blocked == [], f"the page tried to reach the network: {requests.blocked}"
    assert errors == []
    # The cost curve: axes and labels, and the workspace's two curves in its colour.
    drawn, coloured = cost_curve
    assert drawn > 2000 and coloured > 300, f"cost curve looks empty: {cost_curve}"
    assert confusion[0] > 20_000, f"confusion matrix looks empty: {confusion}"
    page.context.close()


def test_dvc_plots_page_is_blank_offline_with_dvcs_default_template(
    reproduced: Path, browser, tmp_path: Path
) -> None:
    """The check above can fail: DVC's own template loads vega from a CDN, which is
    unreachable here, so nothing renders."""
    dvc("config", "--unset", "plots.html_template", cwd=reproduced)
    index = tmp_path / "elsewhere" / "index.html"
    dvc("plots", "show", "-o", str(index.parent), cwd=reproduced)

    page, requests, _ = open_offline(browser, index)
    page.wait_for_timeout(1000)
    assert page.locator(".marks").count() == 0
    assert requests.blocked, "DVC's template should have asked the CDN"
    assert all(url.startswith("https://cdn.jsdelivr.net/npm/vega") for url in requests.blocked)
    page.context.close()


def test_dvc_plots_diff_overlays_two_experiments_offline(
    reproduced: Path, browser, tmp_path: Path
) -> None:
    for name, alpha in [("fast", "1.0"), ("slow", "0.1")]:
        dvc(
            "exp",
            "run",
            "-n",
            name,
            "-S",
            f"train.alpha={alpha}",
            "-S",
            "train.iterations=200",
            cwd=reproduced,
        )
    index = tmp_path / "diff" / "index.html"
    dvc("plots", "diff", "fast", "slow", "-o", str(index.parent), cwd=reproduced)
    html = index.read_text()
    assert '"rev": "fast"' in html and '"rev": "slow"' in html

    page, requests, errors = open_offline(browser, index)
    page.locator("#Cost_curve.vega-embed .marks").first.wait_for()
    page.wait_for_timeout(500)
    first = pixels(page, "#Cost_curve .marks", DVC_FIRST_COLOUR)
    second = pixels(page, "#Cost_curve .marks", DVC_SECOND_COLOUR)
    assert requests.blocked == [] and errors == []
    # Both experiments' curves on one chart, each in its own colour.
    assert first[1] > 200 and second[1] > 200, (first, second)
    page.context.close()


# --- the peers beside the network, in MLflow's compare view ---------------------------------


def test_mlflow_compare_view_shows_the_peers_beside_the_network(
    clone: Path, mlflow_server, browser, tmp_path: Path
) -> None:
    from urllib.parse import quote

    from helpers import run_app

    run_app(
        clone, "sweep=peers", "hydra.launcher.n_jobs=2", "data.folds=2", "data.repeat=range(1)",
        "experiment=modern", "train.iterations=3",
    )  # fmt: skip
    _, runs = mlflow_runs(clone)
    fold = [
        r for r in runs if "mlflow.parentRunId" in r.data.tags and r.data.params["data.fold"] == "0"
    ]
    names = {r.info.run_name for r in fold}
    assert names == {f"peer-{p}-s0-f0r0" for p in ("svc", "mlp", "logistic", "knn")} | {
        "h256-a0.05-i3-s0-f0r0"
    }
    url = mlflow_server(f"sqlite:///{clone / 'mlflow.db'}", clone)
    page, requests = dashboard_page(browser, url)
    context = page.context
    ids = json.dumps([r.info.run_id for r in fold])
    experiments = json.dumps([fold[0].info.experiment_id])
    page.goto(f"{url}/#/compare-runs?runs={quote(ids)}&experiments={quote(experiments)}")
    page.get_by_text("peer-svc-s0-f0r0").first.wait_for()
    page.get_by_text("test_accuracy").first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=screenshot_path("mlflow-peers.png", tmp_path), full_page=True)
    shown = page.inner_text("body")
    for name in names:
        assert name in shown, f"{name} is not in the compare view"
    # The peers' accuracies in the network's metric row: the metrics grid lists the
    # metric names, then each metric's values, a cell per run, to 3 significant digits.
    lines = shown[shown.index("\nMetrics\n") :].splitlines()[3:]
    names_end = next(i for i, line in enumerate(lines) if re.fullmatch(r"NaN|-?[\d.e+-]+", line))
    metric_names = lines[:names_end]
    values = lines[names_end : names_end + len(metric_names) * len(fold)]
    row = metric_names.index("test_accuracy")
    cells = sorted(float(v) for v in values[row * len(fold) : (row + 1) * len(fold)])
    expected = sorted(r.data.metrics["test_accuracy"] for r in fold)
    assert cells == pytest.approx(expected, abs=5e-3), (metric_names, values)
    assert requests.blocked == [], f"the dashboard tried to leave 127.0.0.1: {requests.blocked}"
    context.close()
