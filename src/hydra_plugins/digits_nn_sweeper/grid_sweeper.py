"""The project's grid sweeper: Hydra's BasicSweeper, which also keeps each job's record.

Hydra instantiates sweepers only from the ``hydra_plugins`` package, hence this module;
what it does is in :mod:`digits_nn.sweeps.plan` and :mod:`digits_nn.sweeps.records`.
Selected by default in ``conf/config.yaml`` (``hydra/sweeper: digits``). Beyond the BasicSweeper it:

- writes each job's records, sent back through the launcher's return values, into the
  sweep directory of the launching process (every launcher pickles them back);
- trains the configurations that differ only in ``train.iterations`` as one job, to the
  largest budget (``hydra.sweeper.share_budgets=false`` turns that off);
- launches the jobs with the most training first, so that short ones fill the end;
- launches a configuration listed twice (``seed=0,0``) once;
- on a rerun into the same ``hydra.sweep.dir``, skips the configurations whose record
  says FINISHED, for this very configuration (every resolved key) and for a run the
  store it records to holds;
- never lets a job's exception stop the sweep: it becomes that job's FAILED record,
  and the sweep callback still writes the summary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class GridSweeper(BasicSweeper):
    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        share_budgets: bool = True,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.share_budgets = share_budgets

    def grid(self, arguments: list[str]) -> tuple[list[list[str]], Path]:
        """Every job of the grid (the preset's params and the command line), and the
        sweep directory, created, with the sweep's config saved in it."""
        from digits_nn.sweeps import plan

        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        parsed = parser.parse_overrides([*self._parse_config(), *arguments])
        listed = [list(job) for job in self.split_arguments(parsed, None)[0]]
        jobs = plan.unique(listed)
        if len(jobs) < len(listed):
            log.info(
                "%d configurations listed more than once: each trains once", len(listed) - len(jobs)
            )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return jobs, sweep_dir

    def sweep(self, arguments: list[str]) -> Any:
        from digits_nn.sweeps import plan, records
        from digits_nn.sweeps.protocol import job_key

        jobs, sweep_dir = self.grid(arguments)
        keys = [job_key(job) for job in jobs]
        records.write_jobs(sweep_dir, keys)
        done = records.reusable(sweep_dir, jobs, self._job_config)
        launches = plan.plan(jobs, done, self.share_budgets)
        defaults = {k: OmegaConf.select(self.config, k) for k in plan.WORK_KEYS}
        launches = plan.longest_first(launches, defaults)
        batch_size = self.max_batch_size or max(len(launches), 1)
        returns = []
        for start in range(0, len(launches), batch_size):
            chunk = launches[start : start + batch_size]
            batch = [launch.overrides for launch in chunk]
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=start)
            for launch, result in zip(chunk, results):
                for record in records.records_of(result, launch.members):
                    records.write_record(sweep_dir, record)
            returns.append(results)
        return returns

    def _job_config(self, overrides: list[str]) -> Any:
        """A job's validated config, composed as its launcher will compose it."""
        from digits_nn import config

        assert self.hydra_context is not None and self.config is not None
        composed = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        return config.parse(OmegaConf.masked_copy(composed, [k for k in composed if k != "hydra"]))
