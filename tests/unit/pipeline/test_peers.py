"""The scikit-learn peers: fitted on exactly a run's training rows, with the pixels each
is documented to take, and nothing else."""

import numpy as np
import pytest

from digits_nn import config
from digits_nn.pipeline import peers
from digits_nn.pipeline.prepared import prepare


@pytest.fixture(scope="module")
def data():
    return prepare(config.parse({"data": {"scaler_rows": "train", "folds": 5, "fold": 1}}))


def test_the_config_names_exactly_the_peers_there_are() -> None:
    assert tuple(peers.PEERS_BY_NAME) == config.PEERS


@pytest.mark.parametrize("name", config.PEERS)
def test_a_peer_predicts_as_its_estimator_fitted_on_the_training_rows_alone(data, name) -> None:
    peer = peers.PEERS_BY_NAME[name]
    fitted = peers.fit_peer(name, data, seed=0, validation_size=0.0)
    X_train = data.split.X_train
    X_test = data.split.X_test
    if peer.inputs == "pixels/16":
        X_train = (X_train * data.scaled.scale + data.scaled.mean) / 16
        X_test = (X_test * data.scaled.scale + data.scaled.mean) / 16
        assert X_train.min() == pytest.approx(0.0) and X_train.max() == pytest.approx(1.0)
    alone = peer.estimator(0).fit(X_train, data.split.y_train)
    np.testing.assert_array_equal(fitted.test_predictions, alone.predict(X_test))
    assert len(fitted.train_predictions) == len(data.split.y_train)
    assert fitted.validation_accuracy is None
    assert np.mean(fitted.test_predictions == data.split.y_test) > 0.9


def test_with_validation_rows_a_peer_fits_on_the_rows_the_network_fits_on(data) -> None:
    from digits_nn.data.steps import validation_rows

    fitted = peers.fit_peer("logistic", data, seed=3, validation_size=0.2)
    fit, held = validation_rows(data.split.y_train, 0.2, 3)
    assert len(fitted.train_predictions) == len(fit)
    predicted = fitted.estimator.predict(data.split.X_train[held])
    assert fitted.validation_accuracy == np.mean(predicted == data.split.y_train[held])


def test_a_peers_params_and_tags_mark_it_a_baseline() -> None:
    assert peers.tags("svc") == {"baseline": "true", "peer": "svc"}
    assert peers.params("svc") == {
        "peer.estimator": "SVC(C=10, kernel='rbf', gamma='scale')",
        "peer.inputs": "pixels/16",
        "peer.C": 10.0,
    }
    assert peers.params("knn") == {
        "peer.estimator": "KNeighborsClassifier() (5 neighbours)",
        "peer.inputs": "pixels/16",
    }


# The run logs the label as the peer's estimator: the estimator fitted must be that one.
@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("svc", {"C": 10.0, "kernel": "rbf", "gamma": "scale"}),
        ("mlp", {"solver": "adam", "activation": "relu", "hidden_layer_sizes": (100,)}),
        ("logistic", {"max_iter": 5000}),
        ("knn", {"n_neighbors": 5}),
    ],
)
def test_a_peers_estimator_is_the_one_its_label_names(name: str, settings: dict) -> None:
    made = peers.PEERS_BY_NAME[name].estimator(0).get_params()
    assert {key: made[key] for key in settings} == settings
