"""The Optuna search: its storage, its space, this sweep among the study's, and trials
taken through the budgets, pruned, resumed and joined (on a real SQLite storage, with a
launcher that answers instead of training)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from digits_nn.errors import ConfigError
from digits_nn.sweeps import records, study
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
    assert "hunter2" not in str(refused.value) and "PGPASSWORD" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


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
    with pytest.raises(ConfigError, match=r"hydra.sweeper.n_trial: unknown key.*n_trials"):
        study.settings_from({"n_trial": 3})
    settings = study.settings_from({"budgets": [20, 60]})
    with pytest.raises(ConfigError, match=r"train.iterations is not allowed"):
        study.check_budgets(settings, {"train.iterations": object()}, [])
    with pytest.raises(ConfigError, match=r"train.iterations is not allowed"):
        study.check_budgets(settings, {}, ["train.iterations=7"])
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
        ("pruner", {"n_startup_trials": 3}, "null, or a node with _target_"),
    ],
)
def test_each_sweeper_setting_is_checked_with_one_line(key: str, value, allowed: str) -> None:
    with pytest.raises(ConfigError) as refused:
        study.settings_from({key: value})
    assert str(refused.value).startswith(f"hydra.sweeper.{key}={value!r} is not allowed: {allowed}")


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
