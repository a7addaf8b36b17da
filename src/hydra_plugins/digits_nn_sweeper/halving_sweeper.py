"""Successive halving over exact budgets, as a Hydra sweeper (``sweep=halving``).

Hydra instantiates sweepers only from the ``hydra_plugins`` package, hence this module;
what it does is in :mod:`digits_nn.sweeps.halving` and :mod:`digits_nn.sweeps.rungs`.
It reads its space as the grid sweeper does (``hydra.sweeper.params`` and the command
line), with the budgets as the rungs. ``eta: null`` sweeps the same space exhaustively,
as the grid sweeper does (every budget of every configuration, budgets shared).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from omegaconf import OmegaConf

from hydra_plugins.digits_nn_sweeper.grid_sweeper import GridSweeper

log = logging.getLogger(__name__)


class HalvingSweeper(GridSweeper):
    def __init__(
        self,
        eta: int | None = 3,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        share_budgets: bool = True,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params, share_budgets=share_budgets)
        self.eta = eta

    def sweep(self, arguments: list[str]) -> Any:
        if self.eta is None:
            return super().sweep(arguments)
        from digits_nn.errors import DigitsNNError
        from digits_nn.sweeps import halving, rungs

        jobs, sweep_dir = self.grid(arguments)
        assert self.config is not None
        launcher = rungs.RungLauncher(
            self.launcher, sweep_dir, rungs.work_defaults(self.config), self.max_batch_size
        )
        try:
            space = halving.space_of(jobs)
            halving.check_budgets(space, self.eta)
            keys = ("train.validation_size", "train.patience")
            base = {key: OmegaConf.select(self.config, key) for key in keys}
            halving.check_configurations(space, base)
            halving.run(launcher, space, self.eta, rungs.sweep_store(self.config))
        except DigitsNNError as error:  # one line and exit 2, as a job's own refusal
            log.error("%s", error)
            sys.exit(2)
