"""The pipeline's steps, as the DVC stages and ``pipelines/run.py`` share them.

Owns the prepared data (:mod:`~digits_nn.pipeline.prepared`), the choice of trainer
(:mod:`~digits_nn.pipeline.fit`), evaluation, the files a run writes
(:mod:`~digits_nn.pipeline.outputs`) and its pictures (:mod:`~digits_nn.pipeline.plots`),
what a run records about itself (:mod:`~digits_nn.pipeline.recording`,
:mod:`~digits_nn.pipeline.provenance`), the train and evaluate steps
(:mod:`~digits_nn.pipeline.steps`) and one whole run of a config
(:mod:`~digits_nn.pipeline.app`).

May import the core, the data, tracking, :mod:`digits_nn.config`, :mod:`digits_nn.cli`
and :mod:`digits_nn.errors`; never the sweeps or the stack.
"""
