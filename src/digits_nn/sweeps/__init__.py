"""Sweeps: many configurations of one experiment, on any Hydra launcher.

Owns both sides of a sweep. The launching side plans the launches
(:mod:`~digits_nn.sweeps.plan`), keeps each configuration's record
(:mod:`~digits_nn.sweeps.records`), opens the parent MLflow run and closes it with a
summary (:mod:`~digits_nn.sweeps.callback`, :mod:`~digits_nn.sweeps.summary`) and
registers the best model (:mod:`~digits_nn.sweeps.registry`). The job side runs one
configuration, or several budgets of one (:mod:`~digits_nn.sweeps.job`,
:mod:`~digits_nn.sweeps.budgets`), or goes on from an earlier budget
(:mod:`~digits_nn.sweeps.continuation`). Successive halving
(:mod:`~digits_nn.sweeps.halving`) and the Optuna search (:mod:`~digits_nn.sweeps.study`)
launch configurations budget by budget (:mod:`~digits_nn.sweeps.rungs`). The names both
sides share live in :mod:`~digits_nn.sweeps.protocol`, which imports nothing heavy, so
that the launching side never imports the job path.

May import the pipeline, tracking, the data, the config and credentials, Hydra and
OmegaConf, and optuna in :mod:`~digits_nn.sweeps.study` alone (an optional extra); the
Hydra plugins in ``hydra_plugins/`` import it, never the reverse.
"""
