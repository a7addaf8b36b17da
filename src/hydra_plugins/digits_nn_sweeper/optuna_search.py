"""The project's Optuna sweeper: a study kept in a storage, which a rerun resumes and
other sweeps join, with trials pruned at iteration budgets (``hparams_search=optuna``).

Hydra instantiates sweepers only from the ``hydra_plugins`` package, hence this module;
what it does is in :mod:`digits_nn.sweeps.study`. It reads the search space in Hydra's
sweep syntax, as hydra-optuna-sweeper does, from ``hydra.sweeper.params`` and the
command line. Needs the optional extra: ``pip install -e '.[optuna]'``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class OptunaSearch(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        from digits_nn.errors import DigitsNNError

        try:
            self._search(arguments)
        except DigitsNNError as error:  # one line and exit 2, as a job's own refusal
            log.error("%s", error)
            sys.exit(2)

    def _search(self, arguments: list[str]) -> None:
        try:
            from digits_nn.sweeps import rungs, study
        except ImportError as error:  # optuna is an optional extra
            from digits_nn.errors import ConfigError

            raise ConfigError(
                f"hparams_search=optuna needs Optuna ({error}): pip install -e '.[optuna]'"
            ) from None
        from digits_nn.sweeps.callback import sweep_identity

        assert self.config is not None
        settings = study.settings_from(self.settings)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        space, fixed = study.search_space(settings.params, arguments)
        study.check_budgets(settings, space, fixed)
        url = study.storage_url(settings.storage)
        # Open once to count its trials, then with the sampler seeded for this sweep.
        unseeded = study.Settings(settings.study_name, settings.direction)
        trials = study.open_study(unseeded, url, []).get_trials(deepcopy=False)
        kept = study.this_sweep(sweep_dir, sweep_identity(self.config), len(trials))
        parts = study.seed_parts(sweep_dir, kept, trials)
        search = study.Search(
            study.open_study(settings, url, parts),
            settings,
            rungs.RungLauncher(self.launcher, sweep_dir, rungs.work_defaults(self.config)),
            kept["id"],
            rungs.sweep_store(self.config),
        )
        search.run(space, fixed)
        log.info("study %s: %d trials", settings.study_name, len(search.study.trials))
