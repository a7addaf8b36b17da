"""The Optuna search end to end: a study interrupted and resumed into the same storage,
two sweeps filling one study, and pruned trials marked in Optuna and in MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna

from helpers import interrupt_sweep, mlflow_runs, project_env, run, run_app

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The preset at tiny budgets: each trial trains 2 iterations, then 4 unless pruned.
TINY = ["hydra.sweeper.budgets=[2,4]", "model.hidden_size=choice(16,32)"]
SEARCH = [sys.executable, "pipelines/run.py", "hparams_search=optuna", *TINY]


def trials(clone: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="digits-nn", storage=f"sqlite:///{clone}/optuna.db").trials


def test_an_interrupted_study_resumes_into_the_same_storage(clone: Path) -> None:
    command = [*SEARCH, "hydra.sweeper.n_trials=6", "hydra.sweep.dir=multirun/search"]
    sweep_dir = clone / "multirun/search"
    stopped = interrupt_sweep(command, clone, records=3)
    output = stopped.stdout
    assert stopped.returncode == 130, output
    before = trials(clone)
    finished = [t for t in before if t.state.is_finished()]
    assert len(finished) < 6, output

    rerun = run(command, cwd=clone)
    assert f"resuming: {len(finished)} trials finished" in rerun.stdout + rerun.stderr
    after = trials(clone)
    assert len(after) == 6 and all(t.state.is_finished() for t in after)  # none lost or added
    for was in before:  # the same trials: finished ones unchanged, running ones finished
        now = after[was.number]
        assert now.params == was.params
        if was.state.is_finished():
            assert (now.state, now.value) == (was.state, was.value)
    assert {t.user_attrs["digits_nn_sweep"] for t in after} == {
        json.loads((sweep_dir / "optuna_sweep.json").read_text())["id"]
    }
    # A third run of the same command has nothing left to do.
    again = run(command, cwd=clone)
    assert "resuming: 6 trials finished, 0 to finish" in again.stdout + again.stderr
    assert len(trials(clone)) == 6


def test_two_sweeps_at_once_fill_one_study(clone: Path) -> None:
    processes = [
        subprocess.Popen(
            [
                *SEARCH,
                "hydra.launcher.n_jobs=1",
                "tracking.enabled=false",
                "hydra.sweeper.n_trials=3",
                f"hydra.sweep.dir=multirun/machine-{name}",
            ],
            cwd=clone,
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in ("a", "b")
    ]
    for process in processes:
        output = process.communicate(timeout=900)[0].decode()
        assert process.returncode == 0, output
    found = trials(clone)
    assert sorted(t.number for t in found) == list(range(6))
    assert all(t.state.is_finished() for t in found)
    by_sweep: dict[str, list] = {}
    for trial in found:
        by_sweep.setdefault(trial.user_attrs["digits_nn_sweep"], []).append(trial)
    assert sorted(len(group) for group in by_sweep.values()) == [3, 3]
    first = [group[0].params for group in by_sweep.values()]
    assert first[0] != first[1]  # each sweep draws its own proposals


# The preset, with a pruner that stops every trial at its first budget.
PRUNE_ALL = """    pruner:
      _target_: optuna.pruners.ThresholdPruner
      lower: 1.01
    params:"""


def test_pruned_trials_are_pruned_in_optuna_and_marked_in_mlflow(clone: Path) -> None:
    preset = (clone / "conf/hparams_search/optuna.yaml").read_text()
    pruner = preset[preset.index("    pruner:") : preset.index("    params:") + len("    params:")]
    (clone / "conf/hparams_search/prune_all.yaml").write_text(preset.replace(pruner, PRUNE_ALL))
    command = [sys.executable, "pipelines/run.py", "hparams_search=prune_all", *TINY]
    run([*command, "hydra.sweeper.n_trials=2", "hydra.sweep.dir=multirun/pruned"], cwd=clone)
    found = trials(clone)
    assert [t.state.name for t in found] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [2] for t in found)
    _, runs = mlflow_runs(clone)
    children = [r for r in runs if "optuna.trial" in r.data.tags]
    assert len(children) == 2
    for child in children:
        # The run is whole (its budget trained and evaluated): FINISHED, its trial PRUNED.
        assert child.info.status == "FINISHED"
        assert child.data.tags["optuna.trial_state"] == "PRUNED"
        trial = found[int(child.data.tags["optuna.trial"])]
        assert trial.user_attrs["mlflow_run_id"] == child.info.run_id
        assert trial.intermediate_values[2] == child.data.metrics["validation_accuracy"]
        # And it is a standalone run of its budget, bit for bit.
        own = child.data.tags["overrides"].split()
        folder = clone / "outputs" / child.info.run_id
        run_app(
            clone,
            "experiment=modern",
            "train.validation_size=0.15",
            *[o for o in own if not o.startswith("hparams_search=")],
            "tracking.enabled=false",
            f"hydra.run.dir={folder}",
        )
        key = child.data.tags["sweep_job"]
        in_sweep = clone / "multirun/pruned" / key / "models/model.npz"
        assert (folder / "models/model.npz").read_bytes() == in_sweep.read_bytes()
    summary = (clone / "multirun/pruned/sweep_summary.md").read_text()
    assert "pruned at 2 iterations" in summary
