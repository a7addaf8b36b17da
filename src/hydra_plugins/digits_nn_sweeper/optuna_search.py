"""Hydra's Optuna sweeper, keeping each trial's record as the grid sweeper does.

The search itself is Optuna's, unchanged: each job returns a float (the validation
accuracy) that also carries its records (:class:`digits_nn.sweeps.protocol.Objective`); the
launcher is wrapped so that the records land in the sweep directory, where the sweep
callback summarises them and registers the best trial's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:  # the optional extra: pip install -e '.[optuna]'
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # pragma: no cover - without the extra there is no search to run
    OptunaSweeper = None

if OptunaSweeper is not None:

    class OptunaSearch(OptunaSweeper):
        def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
            from digits_nn.sweeps.records import RecordingLauncher

            super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
            sweep_dir = Path(config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            self.sweeper.launcher = RecordingLauncher(self.sweeper.launcher, sweep_dir)
