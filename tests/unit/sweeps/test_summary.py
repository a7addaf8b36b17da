"""A sweep's summary: the ranking and what it is by, a column for every swept key, and
the parent run's metrics, from the jobs' own records."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import yaml

from digits_nn.sweeps import summary
from helpers import sweep_record as record


def test_with_validation_rows_the_summary_ranks_by_validation_accuracy() -> None:
    rows, metric = summary.rank(
        [record("0.1", 0.99, 0.80), record("0.2", None), record("0.3", 0.90, 0.95)]
    )
    assert metric == "validation_accuracy"
    assert [r["job"] for r in rows] == ["0.3", "0.1", "0.2"]  # not by test accuracy
    assert [r["rank"] for r in rows] == [1, 2, 3]
    table = summary.to_markdown(rows, "Sweep", metric, [])
    assert "ranked by validation accuracy" in table and "0.9900" in table  # test stays


def test_without_validation_rows_the_summary_says_it_is_for_exploration() -> None:
    rows, metric = summary.rank([record("0.1", 0.80), record("0.2", None), record("0.3", 0.90)])
    assert metric == "test_accuracy"
    assert [r["job"] for r in rows] == ["0.3", "0.1", "0.2"]
    markdown = summary.to_markdown(rows, "S", metric, [])
    assert "for exploration, not for choosing a model" in markdown


# The failures counted, the best test accuracy a max: each checked against the records.
def test_the_parent_runs_metrics_are_computed_from_the_jobs_own_records() -> None:
    records = [record("0.1", 0.80), record("0.2", None), record("0.3", 0.95), record("0.4", None)]
    records.append(record("0.5", 0.70))
    rows, metric = summary.rank(records)
    finished = [r for r in records if r["status"] == "FINISHED"]
    assert summary.parent_metrics(rows, metric) == {
        "jobs": 5,
        "failed_jobs": sum(r["status"] != "FINISHED" for r in records),
        "best_test_accuracy": max(r["test_accuracy"] for r in finished),
    }
    validated, metric = summary.rank([record("0.1", 0.99, 0.80), record("0.3", 0.90, 0.95)])
    values = summary.parent_metrics(validated, metric)
    assert values["best_validation_accuracy"] == 0.95 and values["test_accuracy_of_best"] == 0.90


# Without a column per swept key, hidden_sizes=[5] and [60] both show model.hidden_size 30.
def test_the_summary_has_a_column_for_every_swept_key() -> None:
    rows = [
        record("0.1", 0.56, overrides=["model.hidden_sizes=[5]", "model.activation=relu"]),
        record("0.1", 0.36, overrides=["model.hidden_sizes=[60]", "model.activation=relu"]),
    ]
    ranked, _ = summary.rank(rows)
    assert summary.swept_keys(ranked) == ["model.hidden_sizes"]
    table = list(csv.DictReader(io.StringIO(summary.to_csv(ranked))))
    assert [row["model.hidden_sizes"] for row in table] == ["[5]", "[60]"]
    assert "| [5] |" in summary.to_markdown(ranked, "S", "test_accuracy", [])


def test_the_summary_names_the_panels_it_cannot_draw(tmp_path: Path) -> None:
    rows, metric = summary.rank(
        [record("0.1", 0.5, overrides=[f"train.l2={i}", "train.alpha=0.1"]) for i in range(17)]
    )
    written = summary.write_summary(tmp_path, rows, "sweep x", metric)
    assert tmp_path / "sweep_heatmap.png" not in written
    assert (
        "No heatmap: one panel per value of train.l2" in (tmp_path / "sweep_summary.md").read_text()
    )


def test_a_validated_sweeps_best_job_is_a_ready_to_run_preset(tmp_path: Path) -> None:
    rows, metric = summary.rank([record("0.1", 0.99, 0.80), record("0.3", 0.90, 0.95)])
    written = summary.write_summary(tmp_path, rows, "sweep grid", metric)
    assert tmp_path / "best_experiment.yaml" in written
    preset = (tmp_path / "best_experiment.yaml").read_text()
    assert preset.startswith("# @package _global_\n# Best job of sweep grid: validation")
    assert yaml.safe_load(preset) == {"train": {"alpha": 0.3}, "model": {"hidden_size": 10}}


def test_the_failure_line_names_each_failed_job_and_its_error() -> None:
    failed = [
        {"overrides": ["seed=1", "train.alpha=9"], "error": "diverged"},
        {"overrides": ["seed=2"], "error": "killed"},
    ]
    assert summary.failure_line(failed) == (
        "2 job(s) failed: job seed=1 train.alpha=9: diverged; job seed=2: killed"
    )


# A preset without the seed reruns seed 0: another split and other weights than the job
# it names.
def test_the_best_preset_runs_the_same_configuration_as_the_job_it_names() -> None:
    from digits_nn import config

    cfg = config.parse({"seed": 3, "train": {"alpha": 1.0, "validation_size": 0.2}})
    best = record("1.0", 0.9, 0.95, params=config.flatten(cfg), job="seed=3")
    preset = config.parse(yaml.safe_load(summary.best_experiment(best, "sweep x")))
    assert preset.seed == 3
    assert (preset.data, preset.model, preset.train) == (cfg.data, cfg.model, cfg.train)


# An unescaped newline or bar in an error would break the summary's markdown table.
def test_a_multi_line_error_stays_in_its_cell_of_the_markdown_table() -> None:
    failed = record("0.2", None, error="Traceback:\r\n  boom | here\n\nValueError: x")
    rows, metric = summary.rank([record("0.1", 0.9), failed])
    table = summary.to_markdown(rows, "S", metric, []).split("\n\n")[-1].strip().splitlines()
    assert len(table) == 4  # the header, its rule and one line per job
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table}  # unescaped bars
    assert cells == {len(summary.columns(rows)) + 1}
    assert "Traceback:<br>  boom \\| here<br><br>ValueError: x" in table[-1]


# The best *test* accuracy over all jobs, beside the chosen one's, is a figure chosen on
# the test rows (optimistic): a validated sweep does not log it.
def test_a_validated_sweep_logs_no_test_accuracy_chosen_on_the_test_rows() -> None:
    rows, metric = summary.rank([record("0.1", 0.99, 0.80), record("0.3", 0.90, 0.95)])
    assert summary.parent_metrics(rows, metric) == {
        "jobs": 2,
        "failed_jobs": 0,
        "best_validation_accuracy": 0.95,
        "test_accuracy_of_best": 0.90,
    }


# Ties on validation accuracy are broken by a stated rule, not silently by grid order.
def test_ties_are_broken_by_less_training_then_by_name_and_the_summary_says_so(
    tmp_path: Path,
) -> None:
    def job(key: str, iterations: int, hidden: int, validation: float) -> dict:
        params = {"train.alpha": float(key), "train.iterations": iterations}
        return record(key, 0.9, validation, params=params | {"model.hidden_size": hidden})

    listed = [
        job("0.5", 3000, 30, 0.95),
        job("0.4", 3000, 30, 0.95),
        job("0.3", 500, 100, 0.95),  # 500 x 110 units: less training than 3000 x 40
        job("0.2", 10000, 10, 0.97),
        job("0.1", 500, 10, 0.90),
    ]
    rows, metric = summary.rank(listed)
    assert [r["job"] for r in rows] == ["0.2", "0.3", "0.4", "0.5", "0.1"]
    assert summary.rank(list(reversed(listed)))[0] == rows  # not the grid's order
    tied, _ = summary.rank([r for r in listed if r["key"] != "0.2"])
    summary.write_summary(tmp_path, tied, "sweep x", metric)
    text = (tmp_path / "sweep_summary.md").read_text()
    assert "Ties are broken by less training (iterations × hidden and output units)" in text
    assert "3 jobs tie at the best validation_accuracy (0.9500): job 0.3 ranks first" in text


# The header is what a user reads before copying the file; a fold, or where the job was
# recorded (tracking, paths), would make the preset one resample of one machine's run.
def test_the_best_preset_names_its_job_and_how_to_run_it_and_keeps_no_fold() -> None:
    best = {
        "job": "seed=3,train.alpha=1.0",
        "overrides": ["seed=3", "train.alpha=1.0"],
        "validation_accuracy": 0.95,
        "test_accuracy": 0.9,
        "params": {
            "seed": 3,
            "train.alpha": 1.0,
            "data.folds": 5,
            "data.fold": 2,
            "data.repeat": 0,
            "data.test_size": 0.4,
            "model.hidden_size": 30,
            "tracking.experiment": "digits-nn",
            "paths.root": "/elsewhere",
        },
    }
    assert summary.best_experiment(best, "sweep cv") == (
        "# @package _global_\n"
        "# Best job of sweep cv: validation accuracy 0.9500, test accuracy 0.9000.\n"
        "# Job seed=3,train.alpha=1.0: seed=3 train.alpha=1.0\n"
        "# Run it: cp this file conf/experiment/best.yaml &&"
        " python pipelines/run.py experiment=best\n"
        "seed: 3\n"
        "train:\n"
        "  alpha: 1.0\n"
        "data:\n"
        "  test_size: 0.4\n"
        "model:\n"
        "  hidden_size: 30\n"
    )


def configuration_table() -> list[dict]:
    """Two configurations as resamples.configurations gives them: the best, and one
    measured on a single resample (no spread, no test), whose name holds a bar."""
    nan = float("nan")
    return [
        {
            "rank": 1,
            "configuration": "train.alpha=1.0",
            "resamples": 10,
            "mean": 0.97,
            "std": 0.01,
            "ci95_low": 0.95,
            "ci95_high": 0.99,
            "vs_best": "best",
            "p_vs_best": None,
            "example": {"key": "train.alpha=1.0"},  # not a column
        },
        {
            "rank": 2,
            "configuration": "train.note=a|b",
            "resamples": 1,
            "mean": 0.9,
            "std": nan,
            "ci95_low": nan,
            "ci95_high": nan,
            "vs_best": "too few shared resamples",
            "p_vs_best": None,
        },
    ]


def test_the_configurations_csv_has_one_line_per_configuration_and_only_its_columns() -> None:
    assert summary.configurations_csv(configuration_table()) == (
        "rank,configuration,resamples,mean,std,ci95_low,ci95_high,vs_best,p_vs_best\n"
        "1,train.alpha=1.0,10,0.97,0.01,0.95,0.99,best,\n"
        "2,train.note=a|b,1,0.9,nan,nan,nan,too few shared resamples,\n"
    )


# A figure that does not exist (a single resample's spread, the best's own test) is an
# empty cell, and a bar in a name is escaped: either would otherwise break the table.
def test_the_configurations_table_explains_its_figures_and_leaves_missing_ones_empty() -> None:
    assert summary.configurations_markdown(configuration_table(), "validation_accuracy") == (
        "## Configurations: validation accuracy over their resamples\n"
        "\n"
        "Mean and standard deviation over each configuration's resamples (folds, repeats,"
        " seeds), and the 95 % interval of the mean with Nadeau and Bengio's correction for"
        " overlapping training rows. `vs_best`: the corrected paired t-test against the"
        " best on the resamples both have; indistinguishable when p >= 0.05.\n"
        "\n"
        "| rank | configuration | resamples | mean | std | ci95_low | ci95_high | vs_best"
        " | p_vs_best |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| 1 | train.alpha=1.0 | 10 | 0.9700 | 0.0100 | 0.9500 | 0.9900 | best |  |\n"
        "| 2 | train.note=a\\|b | 1 | 0.9000 |  |  |  | too few shared resamples |  |\n"
        "\n"
        "## Jobs"
    )
