"""The model registry: the best job of a sweep chosen on validation rows becomes a new
version of ``digits-nn``, aliased ``challenger``."""

from __future__ import annotations

import json
from typing import Any

from digits_nn.tracking.models import model_of
from digits_nn.tracking.runs import RunLog
from digits_nn.tracking.store import Store, as_global

REGISTERED_MODEL, ALIAS = "digits-nn", "challenger"
# The logged model's tag listing its registry versions (mlflow.utils.mlflow_tags).
MODEL_VERSIONS_TAG = "mlflow.modelVersions"


def register_best(store: Store, best: dict[str, Any]) -> str:
    """Register the best job's model as a new version of ``digits-nn``, aliased
    ``challenger``, carrying the run, its params, the data md5 and both accuracies.

    Only for a sweep ranked on validation accuracy: a model chosen on the test rows
    would come with an optimistic test accuracy.
    """
    client = store.client
    run = client.get_run(best["run_id"])
    if not client.search_registered_models(filter_string=f"name = '{REGISTERED_MODEL}'"):
        client.create_registered_model(REGISTERED_MODEL)
    tags = {f"param.{k}": str(v) for k, v in best["params"].items()}
    tags |= {
        "data_md5": run.data.tags.get("data_md5", ""),
        "test_accuracy": f"{best['test_accuracy']:.6f}",
        "validation_accuracy": f"{best['validation_accuracy']:.6f}",
    }
    # The version is the run's logged model (models:/<model_id>), as MLflow's own
    # register_model makes it: loading it reads the model's files, and the model lists
    # the version (its mlflow.modelVersions tag, which the Models tab shows).
    model_id = model_of(RunLog(store, run.info.run_id))
    source = f"models:/{model_id}" if model_id else f"{run.info.artifact_uri}/model"
    with as_global(store):  # MLflow resolves a models:/ source in the global store
        version = client.create_model_version(
            REGISTERED_MODEL,
            source=source,
            run_id=run.info.run_id,
            tags=tags,
            description=f"Best of a sweep by validation accuracy: {' '.join(best['overrides'])}",
            model_id=model_id,
        ).version
    if model_id:
        listed = json.loads(client.get_logged_model(model_id).tags.get(MODEL_VERSIONS_TAG) or "[]")
        # A tracking server lists the new version itself; the SQLite registry does not.
        if not any(
            entry.get("name") == REGISTERED_MODEL and str(entry.get("version")) == str(version)
            for entry in listed
        ):
            entry = {"name": REGISTERED_MODEL, "version": str(version)}
            client.set_logged_model_tags(
                model_id, {MODEL_VERSIONS_TAG: json.dumps([*listed, entry])}
            )
    client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version)
    return str(version)
