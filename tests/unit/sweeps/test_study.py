"""The Optuna search: its storage, its space, this sweep among the study's, and trials
taken through the budgets, pruned, resumed and joined (on a real SQLite storage, with a
launcher that answers instead of training)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra.core.override_parser.types import IntervalSweep
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sqlalchemy.dialects import registry
from sqlalchemy.engine.default import DefaultDialect

from digits_nn.errors import ConfigError
from digits_nn.sweeps import records, study
from digits_nn.sweeps.protocol import KEEP_STATE_ENV
from digits_nn.sweeps.rungs import RungLauncher
from helpers import AnsweringLauncher

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_default_storage_is_optuna_db_at_the_repository_root_or_the_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(study.STORAGE_ENV, raising=False)
    assert study.storage_url(None, tmp_path) == f"sqlite:///{tmp_path / 'optuna.db'}"
    monkeypatch.setenv(study.STORAGE_ENV, "postgresql+psycopg2://me:secret@127.0.0.1:5/optuna")
    assert study.storage_url(None, tmp_path).endswith(":secret@127.0.0.1:5/optuna")
    assert study.storage_url("sqlite:////x/o.db", tmp_path) == "sqlite:////x/o.db"


def test_a_password_in_the_configured_storage_is_refused_without_being_repeated() -> None:
    with pytest.raises(ConfigError) as refused:
        study.storage_url("postgresql://me:hunter2@db.example/optuna")
    assert str(refused.value) == (
        "hydra.sweeper.storage=postgresql://me:***@db.example/optuna is not allowed: a URL"
        " without a password (Hydra writes it into the sweep's folders). Give the password in"
        " PGPASSWORD or a pgpass file, or the whole URL in DIGITS_NN_OPTUNA_STORAGE."
    )


def test_an_unusable_storage_is_one_line_naming_it_without_its_password() -> None:
    from helpers import free_port

    url = f"postgresql+psycopg2://me:hunter2@127.0.0.1:{free_port()}/optuna"
    with pytest.raises(ConfigError, match=r"cannot open study 'digits-nn'") as refused:
        study.open_study(study.Settings(), url, [])
    assert "hunter2" not in str(refused.value) and "127.0.0.1" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


def test_a_pruner_or_sampler_that_cannot_be_built_is_refused_in_one_line(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    pruner = {"_target_": "optuna.pruners.ThresholdPruner", "n_startup_trials": 3}
    with pytest.raises(ConfigError, match=r"hydra.sweeper.pruner=.* TypeError") as refused:
        study.open_study(study.Settings(pruner=pruner), url, [])
    assert len(str(refused.value).splitlines()) == 1


def test_hydras_sweep_syntax_becomes_optunas_distributions() -> None:
    params = {
        "train.alpha": "tag(log, interval(0.005, 0.3))",
        "model.hidden_size": "choice(64, 128)",
        "train.iterations": "int(range(20, 121, 20))",
        "train.l2": "interval(0.0, 10.0)",
        "seed": "3",
    }
    space, fixed = study.search_space(params, ["train.l2=1.5", "train.batch_size=16,32"])
    assert space == {
        "train.alpha": FloatDistribution(0.005, 0.3, log=True),
        "model.hidden_size": CategoricalDistribution([64, 128]),
        "train.iterations": IntDistribution(20, 120, step=20),
        "train.batch_size": CategoricalDistribution([16, 32]),
    }
    assert fixed == ["seed=3", "train.l2=1.5"]  # the command line wins
    assert study.trial_overrides({"train.alpha": 0.01, "model.hidden_size": 64}) == [
        "train.alpha=0.01",
        "model.hidden_size=64",
    ]


def test_unknown_sweeper_keys_and_budgets_that_clash_are_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        study.settings_from({"n_trial": 3})
    assert str(refused.value) == (
        "hydra.sweeper.n_trial: unknown key of the Optuna sweeper. Allowed keys: study_name,"
        " direction, storage, n_trials, n_jobs, sampler, pruner, budgets, params."
    )
    settings = study.settings_from({"budgets": [20, 60]})
    with pytest.raises(ConfigError, match=r"train.iterations is not allowed"):
        study.check_budgets(settings, {"train.iterations": object()}, [])
    with pytest.raises(ConfigError) as refused:
        study.check_budgets(settings, {}, ["train.iterations=7"])
    assert str(refused.value) == (
        "train.iterations is not allowed among the search's params or overrides when"
        " hydra.sweeper.budgets is set: the budgets are the trials' iterations."
    )
    with pytest.raises(ConfigError, match=r"whole numbers >= 1"):
        study.check_budgets(study.Settings(budgets=[0, 5]), {}, [])


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("n_trials", 0, "a whole number >= 1"),
        ("n_jobs", "2", "a whole number >= 1"),
        ("direction", "up", "maximize or minimize"),
        ("study_name", " ", "a non-empty name"),
        ("budgets", [20, 0], "null, or a list of whole numbers >= 1"),
        ("budgets", [], "null, or a list of whole numbers >= 1"),
        (
            "pruner",
            {"n_startup_trials": 3},
            "null, or a node with _target_ an Optuna class and its arguments",
        ),
        (
            "sampler",
            ["RandomSampler"],
            "null, or a node with _target_ an Optuna class and its arguments",
        ),
    ],
)
def test_each_sweeper_setting_is_checked_with_one_line(key: str, value, allowed: str) -> None:
    with pytest.raises(ConfigError) as refused:
        study.settings_from({key: value})
    assert str(refused.value) == f"hydra.sweeper.{key}={value!r} is not allowed: {allowed}."


def test_the_smallest_allowed_settings_are_accepted() -> None:
    given = {"n_trials": 1, "n_jobs": 1, "budgets": [1, 2], "direction": "minimize"}
    settings = study.settings_from(given)
    assert (settings.n_trials, settings.n_jobs, settings.budgets) == (1, 1, [1, 2])
    assert settings.direction == "minimize"
    study.check_budgets(settings, {}, [])  # one iteration is a budget too


def test_settings_given_as_hydra_nodes_are_read_as_plain_values() -> None:
    sampler = {"_target_": "optuna.samplers.RandomSampler", "seed": 1}
    given = OmegaConf.create({"sampler": sampler, "budgets": [2, 4], "params": SPACE})
    settings = study.settings_from(given)
    assert (settings.sampler, settings.budgets, settings.params) == (sampler, [2, 4], SPACE)
    assert [type(settings.sampler), type(settings.budgets)] == [dict, list]


def test_a_study_to_maximize_goes_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    opened = study.open_study(study.Settings(direction="maximize"), url, [])
    assert opened.direction == optuna.study.StudyDirection.MAXIMIZE


def test_a_seeded_sampler_proposes_the_same_trials_for_the_same_seed_parts(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sampler = {"_target_": "optuna.samplers.RandomSampler", "seed": 7}
    space = {"x": FloatDistribution(0.0, 1.0)}

    def proposals(name: str, parts: list[int]) -> list[float]:
        opened = study.open_study(study.Settings(study_name=name, sampler=sampler), url, parts)
        return [opened.ask(space).params["x"] for _ in range(2)]

    first = proposals("one", [1, 2, 3])
    assert proposals("two", [1, 2, 3]) == first != proposals("three", [1, 2, 4])


def test_a_storage_that_cannot_be_opened_is_named_with_the_first_line_of_why(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'folder'}"
    (tmp_path / "folder").mkdir()  # a folder is no database file
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(), url, [])
    assert str(refused.value) == (
        f"Optuna storage {url}: cannot open study 'digits-nn' ((sqlite3.OperationalError)"
        " unable to open database file). Point hydra.sweeper.storage or"
        " DIGITS_NN_OPTUNA_STORAGE at a working database."
    )


def test_why_a_storage_cannot_be_opened_is_cut_to_300_characters() -> None:
    url = f"{'f' * 400}://db.example/optuna"  # the error quotes the unknown dialect's name
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(), url, [])
    why = str(refused.value).split(" (", 1)[1].rsplit("). Point", 1)[0]
    assert len(why) == 300 and why.endswith("f" * 50)


class WordlessDialect(DefaultDialect):
    """A database driver that fails without a word."""

    name = "wordless"

    @classmethod
    def import_dbapi(cls) -> Any:
        raise NotImplementedError


class UnfinishedSampler:
    """A sampler class that fails without a word."""

    def __init__(self) -> None:
        raise NotImplementedError


def test_a_failure_without_words_is_named_by_its_type(tmp_path: Path) -> None:
    registry.register("wordless", __name__, "WordlessDialect")
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(), "wordless://db.example/optuna", [])
    assert str(refused.value) == (
        "Optuna storage wordless://db.example/optuna: cannot open study 'digits-nn'"
        " (NotImplementedError). Point hydra.sweeper.storage or DIGITS_NN_OPTUNA_STORAGE at a"
        " working database."
    )
    sampler = {"_target_": f"{__name__}.UnfinishedSampler"}
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(sampler=sampler), f"sqlite:///{tmp_path / 'optuna.db'}", [])
    assert re.fullmatch(
        rf"hydra.sweeper.sampler={re.escape(str(sampler))} is not allowed: NotImplementedError:"
        r" +\(a node with _target_ an Optuna sampler class, and its arguments\).",
        str(refused.value),
    )


def test_a_sampler_that_cannot_be_built_is_refused_with_the_first_line_of_why(tmp_path) -> None:
    sampler = {"_target_": "optuna.samplers.RandomSampler", "sed": 1}
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(sampler=sampler), f"sqlite:///{tmp_path / 'optuna.db'}", [])
    assert str(refused.value) == (
        f"hydra.sweeper.sampler={sampler} is not allowed: TypeError: RandomSampler.__init__()"
        " got an unexpected keyword argument 'sed' (a node with _target_ an Optuna sampler"
        " class, and its arguments)."
    )


@pytest.mark.parametrize(
    ("swept", "expected"),
    [
        ("range(0.5, 2.0, 0.5)", CategoricalDistribution([0.5, 1.0, 1.5])),
        ("range(5, 6)", CategoricalDistribution([5])),
        ("int(interval(1, 10))", IntDistribution(1, 10)),
        ("tag(log, int(interval(1, 64)))", IntDistribution(1, 64, log=True)),
    ],
)
def test_each_form_of_sweep_becomes_its_distribution(swept: str, expected) -> None:
    assert study.search_space({"model.hidden_size": swept}, []) == (
        {"model.hidden_size": expected},
        [],
    )


def test_an_interval_with_a_fractional_end_is_continuous() -> None:
    interval = IntervalSweep(start=1, end=2.5)
    assert study.distribution("train.alpha", interval) == FloatDistribution(1.0, 2.5)


def test_a_key_swept_on_the_command_line_is_no_longer_fixed() -> None:
    space, fixed = study.search_space({"seed": "3"}, ["seed=1,2"])
    assert (space, fixed) == ({"seed": CategoricalDistribution([1, 2])}, [])


def test_a_sweep_optuna_cannot_sample_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        study.search_space({"model.hidden_size": "glob(*)"}, [])
    assert str(refused.value) == (
        "model.hidden_size: Glob is not a search space Optuna can sample: use choice(...),"
        " range(...) or interval(...)."
    )


def test_a_rerun_of_the_same_sweep_keeps_its_id_another_sweep_gets_its_own(tmp_path) -> None:
    first = study.this_sweep(tmp_path, ["a=1"], trials_now=4)
    assert study.this_sweep(tmp_path, ["a=1"], trials_now=9) == first
    other = study.this_sweep(tmp_path, ["a=2"], trials_now=9)
    assert other["id"] != first["id"] and other["trials_before"] == 9
    parts = study.seed_parts(tmp_path, first, [])
    assert parts != study.seed_parts(tmp_path / "elsewhere", first, [])
    assert parts != study.seed_parts(tmp_path, other, [])
    asked = optuna.trial.create_trial(value=1.0, user_attrs={study.SWEEP_ATTR: first["id"]})
    assert parts != study.seed_parts(tmp_path, first, [asked])


# ---- trials through the budgets ---------------------------------------------------------

SPACE = {"train.alpha": "interval(0.01, 1.0)", "model.hidden_size": "choice(16, 32, 64)"}


def score(overrides: list[str]) -> float:
    """A made-up validation accuracy: best at alpha 0.5, rising with the budget."""
    values = dict(o.split("=") for o in overrides)
    budget = int(values.get("train.iterations", 1))
    return 0.9 - abs(float(values["train.alpha"]) - 0.5) / 2 + budget / 1000


def search(
    folder: Path, launcher: AnsweringLauncher, url: str, parts: list[int] | None = None, **settings
) -> study.Search:
    """A sweep of the study at ``url`` in ``folder``; ``parts`` fixes the sampler's seed
    parts, which otherwise come from the folder (a temporary one, different every time)."""
    launcher.score = score
    given = {"params": SPACE, "n_trials": 6, "n_jobs": 2, "budgets": [2, 4, 8]}
    given["sampler"] = {"_target_": "optuna.samplers.RandomSampler", "seed": 0}
    chosen = study.settings_from(given | settings)
    trials = study.open_study(study.Settings(), url, []).trials
    kept = study.this_sweep(folder, [str(folder)], len(trials))
    if parts is None:
        parts = study.seed_parts(folder, kept, trials)
    opened = study.open_study(chosen, url, parts)
    rungs = RungLauncher(launcher, folder, {})
    return study.Search(opened, chosen, rungs, kept["id"])


def run(found: study.Search) -> list[str]:
    space, fixed = study.search_space(found.settings.params, [])
    return found.run(space, fixed)


def states(url: str) -> list[str]:
    return [t.state.name for t in optuna.load_study(study_name="digits-nn", storage=url).trials]


def test_a_pruned_trial_stops_at_its_budget_and_each_budget_goes_on_from_the_last(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    pruner = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.8}
    launcher = AnsweringLauncher()
    # Seeded apart from the folder, so the proposals are the same in every folder: some
    # fall below the threshold at budget 2 and some do not.
    keys = run(search(tmp_path / "sweep", launcher, url, parts=[0, 0, 0], pruner=pruner))
    loaded = optuna.load_study(study_name="digits-nn", storage=url)
    assert len(loaded.trials) == 6
    for trial in loaded.trials:
        reached = sorted(trial.intermediate_values)
        if trial.state == TrialState.PRUNED:
            assert trial.value < 0.8 + 0.002 and reached == [2]
        else:
            assert trial.state == TrialState.COMPLETE and reached == [2, 4]
    assert {"PRUNED", "COMPLETE"} <= set(states(url))
    # Every run a trial reached is in the summary, with its trial and what became of it.
    rows = records.sweep_records(tmp_path / "sweep")
    assert [r["key"] for r in rows] == keys
    assert all(r["outcome"].startswith(f"trial {r['trial']}: ") for r in rows)
    assert any(r["outcome"].endswith("pruned at 2 iterations") for r in rows)
    going_on = [o for batch in launcher.batches for o in batch if "train.iterations=4" in o]
    assert going_on and all(
        any(x.startswith("++hydra.job.env_set.DIGITS_NN_CONTINUE_FROM='2:") for x in o)
        for o in going_on
    )


def test_an_interrupted_sweep_finishes_its_trials_and_asks_only_for_the_rest(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    interrupted = AnsweringLauncher()
    interrupted.stop_after = 4  # batch 1 through its three budgets, batch 2 at its first
    with pytest.raises(KeyboardInterrupt):
        run(search(tmp_path / "sweep", interrupted, url))
    before = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.state.name for t in before] == ["COMPLETE", "COMPLETE", "RUNNING", "RUNNING"]
    assert sorted(before[2].intermediate_values) == [2]

    resumed = AnsweringLauncher()
    run(search(tmp_path / "sweep", resumed, url))
    after = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.state.name for t in after] == ["COMPLETE"] * 6  # none lost, none added
    for was, now in zip(before, after):
        assert was.params == now.params
    assert after[2].intermediate_values == {2: score_of(after[2], 2), 4: score_of(after[2], 4)}
    # Trials 2 and 3 went on from budget 4 (budget 2 was kept), then trials 4 and 5.
    budgets = [{o[2] for o in batch} for batch in resumed.batches]
    assert budgets == [{"train.iterations=4"}, {"train.iterations=8"}] + [
        {f"train.iterations={b}"} for b in (2, 4, 8)
    ]


def score_of(trial: optuna.trial.FrozenTrial, budget: int) -> float:
    overrides = [f"{k}={v}" for k, v in trial.params.items()]
    return score([*overrides, f"train.iterations={budget}"])


def test_two_sweeps_with_one_study_name_fill_one_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run(search(tmp_path / "here", AnsweringLauncher(), url, n_trials=3))
    run(search(tmp_path / "there", AnsweringLauncher(), url, n_trials=2))
    trials = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    sweeps = [t.user_attrs[study.SWEEP_ATTR] for t in trials]
    assert len(set(sweeps[:3])) == 1 and len(set(sweeps[3:])) == 1 and sweeps[0] != sweeps[3]
    assert trials[0].params != trials[3].params  # each sweep draws its own proposals


class EditingLauncher(AnsweringLauncher):
    """An answering launcher whose records are changed by ``edit`` before they come back."""

    def __init__(self, edit: Any) -> None:
        super().__init__()
        self.edit = edit

    def launch(self, batch, initial_job_idx):
        returns = super().launch(batch, initial_job_idx)
        for result in returns:
            for record in result.return_value.records:
                self.edit(record)
        return returns


class FailingLauncher(AnsweringLauncher):
    """A launcher whose every job raises, as Hydra returns a job that raised."""

    def launch(self, batch, initial_job_idx):
        self.batches.append(batch)
        error = ValueError("diverged")
        return [JobReturn(status=JobStatus.FAILED, _return_value=error) for _ in batch]


def outcomes(folder: Path) -> list[str]:
    return [row["outcome"] for row in records.sweep_records(folder)]


def test_each_budget_but_the_last_keeps_its_state_and_a_trial_names_its_last_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    launcher = AnsweringLauncher()
    run(search(tmp_path / "sweep", launcher, url, n_trials=2))
    keep = f"++hydra.job.env_set.{KEEP_STATE_ENV}='1'"
    assert [[keep in job for job in batch] for batch in launcher.batches] == [
        [True, True],
        [True, True],
        [False, False],
    ]
    assert outcomes(tmp_path / "sweep") == [
        *["trial 0: went on", "trial 1: went on"] * 2,
        *["trial 0: complete", "trial 1: complete"],
    ]
    last = records.sweep_records(tmp_path / "sweep")[-2:]
    trials = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.user_attrs["mlflow_run_id"] for t in trials] == [r["run_id"] for r in last]
    assert all(r["run_id"] == f"run-{r['key']}" for r in last)


def test_without_budgets_each_trial_is_one_run_of_its_own_iterations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    launcher = AnsweringLauncher()
    run(search(tmp_path / "sweep", launcher, url, n_trials=2, budgets=None))
    (batch,) = launcher.batches
    assert len(batch) == 2 and not any("train.iterations" in o for job in batch for o in job)
    trials = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert [t.value for t in trials] == [score(job[:2]) for job in batch]


def test_a_trial_whose_job_failed_fails_saying_why(tmp_path: Path, recwarn) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run(search(tmp_path / "sweep", FailingLauncher(), url, n_trials=2))
    assert states(url) == ["FAIL", "FAIL"]
    # Told as failed, not as a value Optuna cannot read (which it fails with a warning).
    assert [str(w.message) for w in recwarn if not issubclass(w.category, DeprecationWarning)] == []
    assert outcomes(tmp_path / "sweep") == [
        "trial 0: failed (ValueError: diverged)",
        "trial 1: failed (ValueError: diverged)",
    ]


def test_a_job_without_a_validation_accuracy_reports_its_test_accuracy(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    launcher = EditingLauncher(lambda record: record.update(validation_accuracy=None))
    run(search(tmp_path / "sweep", launcher, url, n_trials=2))
    for trial in optuna.load_study(study_name="digits-nn", storage=url).trials:
        assert trial.value == 0.5 and trial.intermediate_values == {2: 0.5, 4: 0.5}


def test_every_run_of_a_trial_is_tagged_with_its_study_trial_and_how_it_ended(
    tmp_path: Path, store
) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"

    def tracked(record: dict[str, Any]) -> None:
        record["run_id"] = store.client.create_run(store.experiment_id).info.run_id

    pruner = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.8}
    # Seeded apart from the folder, so that one trial is pruned and the other completes.
    launcher = EditingLauncher(tracked)
    found = search(
        tmp_path / "sweep", launcher, url, [0, 0, 0], n_trials=2, budgets=[2, 4], pruner=pruner
    )
    found.store = store
    run(found)
    ended = {t.number: t.state.name for t in found.study.trials}
    assert set(ended.values()) == {"PRUNED", "COMPLETE"}
    for row in records.sweep_records(tmp_path / "sweep"):
        tags = store.client.get_run(row["run_id"]).data.tags
        assert {k: v for k, v in tags.items() if k.startswith("optuna.")} == {
            "optuna.study": "digits-nn",
            "optuna.trial": str(row["trial"]),
            "optuna.trial_state": ended[row["trial"]],
        }


def test_a_rerun_of_a_finished_sweep_says_so_and_asks_for_no_trial(tmp_path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run(search(tmp_path / "sweep", AnsweringLauncher(), url, n_trials=2))
    caplog.set_level(logging.INFO, logger=study.__name__)
    again = search(tmp_path / "sweep", AnsweringLauncher(), url, n_trials=2)
    run(again)
    assert states(url) == ["COMPLETE", "COMPLETE"]
    assert [r.getMessage() for r in caplog.records if r.name == study.__name__] == [
        f"resuming Optuna sweep {again.sweep_id}",
        "resuming: 2 trials finished, 0 to finish",
    ]


def test_a_resumed_trial_goes_on_through_a_budget_added_between_those_it_reached(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    interrupted = AnsweringLauncher()
    interrupted.stop_after = 5  # batch 1 through its three budgets, batch 2 through two
    with pytest.raises(KeyboardInterrupt):
        run(search(tmp_path / "sweep", interrupted, url))
    run(search(tmp_path / "sweep", AnsweringLauncher(), url, budgets=[2, 3, 4, 8]))
    trials = optuna.load_study(study_name="digits-nn", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert sorted(trials[2].intermediate_values) == [2, 3, 4]
    for row in records.sweep_records(tmp_path / "sweep"):
        ended = "complete" if "train.iterations=8" in row["overrides"] else "went on"
        assert row["outcome"] == f"trial {row['trial']}: {ended}"


def test_a_study_reopened_in_the_other_direction_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study.open_study(study.Settings(direction="minimize"), url, [])
    with pytest.raises(ConfigError) as refused:
        study.open_study(study.Settings(direction="maximize"), url, [])
    assert str(refused.value) == (
        f"hydra.sweeper.direction=maximize is not allowed: study 'digits-nn' in {url} was"
        " created to minimize; sweep it that way, or name another study"
        " (hydra.sweeper.study_name)."
    )
    assert study.open_study(study.Settings(direction="minimize"), url, []).direction.name == (
        "MINIMIZE"
    )
