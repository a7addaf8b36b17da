"""digits-nn: a from-scratch numpy network on scikit-learn's 8x8 digits.

The packages, by role (each one's docstring says what it owns and may import):

- :mod:`digits_nn.core`: the network and its training, in numpy alone;
- :mod:`digits_nn.data`: the dataset, the data steps and their files, the model file;
- :mod:`digits_nn.tracking`: MLflow: the store, runs, redaction, the logged model;
- :mod:`digits_nn.pipeline`: the steps the DVC stages and ``pipelines/run.py`` share;
- :mod:`digits_nn.sweeps`: both sides of a Hydra multirun;
- :mod:`digits_nn.stack`: the local services for trying scale-out, which no run imports.

And five modules everyone may use: :mod:`~digits_nn.config` (the one typed schema),
:mod:`~digits_nn.credentials` (URIs with credentials), :mod:`~digits_nn.errors`,
:mod:`~digits_nn.cli` (what every entry point does around its work) and
:mod:`~digits_nn.serving` (the served model), with the command
``python -m digits_nn.compose``.
"""

__version__ = "0.1.0"
