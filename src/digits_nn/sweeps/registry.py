"""The model registry: the best job of a sweep chosen on validation rows becomes a new
version of ``digits-nn``, aliased ``challenger``."""

from __future__ import annotations

from typing import Any

from digits_nn.tracking.store import Store

REGISTERED_MODEL, ALIAS = "digits-nn", "challenger"


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
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags=tags,
        description=f"Best of a sweep by validation accuracy: {' '.join(best['overrides'])}",
    ).version
    client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version)
    return str(version)
