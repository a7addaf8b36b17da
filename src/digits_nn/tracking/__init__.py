"""MLflow: the store, the run lifecycle, what is logged to a run, secret redaction, and
logging the model.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run id rather than
MLflow's global "active run", so the train and evaluate stages (two processes) and the
parallel sweep workers can all write to the runs they own. MLflow is imported lazily:
importing it costs over a second, and only code that logs should pay for it.

May import mlflow, :mod:`digits_nn.config`, :mod:`digits_nn.errors` and
:mod:`digits_nn.data`; never the pipeline or the sweeps. Nothing in it knows which
server or database sits behind a tracking URI.
"""
