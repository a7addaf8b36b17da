"""The whole pipeline for one Hydra config, in one process; `-m` sweeps many configs.

    python pipelines/run.py train.alpha=1.0
    python pipelines/run.py -m train.alpha=0.25,1.0,2.5 model.hidden_size=10,30,60
    python pipelines/run.py sweep=grid

Outputs go to Hydra's run directory (outputs/... or multirun/...), never over the DVC
outputs; each config is one MLflow run, and a sweep is their parent run.
"""

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from digits_nn.cli import exit_on_user_error, guarded
from digits_nn.pipeline import app
from digits_nn.sweeps import job


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    with exit_on_user_error():
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return job.run(cfg)
        return app.run_single(cfg)


if __name__ == "__main__":
    guarded(main)  # Ctrl-C in a sweep reaches here: exit 130, no traceback
