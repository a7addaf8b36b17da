"""The model file: a network and an ensemble round-trip, and a file that cannot be the network it
claims is refused, naming the file."""

import numpy as np
import pytest

from digits_nn.core.network import Ensemble, Network, initialise
from digits_nn.data.model_file import read_model, write_model
from helpers import assert_artifact_error, parameters


@pytest.fixture
def model_arrays(tmp_path):
    """The arrays of a valid 64-30-10 model file, to be tampered with."""
    path = tmp_path / "valid_model.npz"
    write_model(path, initialise([64, 30, 10], "uniform", seed=0))
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("sizes", [[64, 30, 10], [64, 100, 50, 10]], ids=["one", "two-hidden"])
def test_model_round_trip_and_array_names(tmp_path, sizes):
    net = initialise(sizes, "uniform", seed=2)
    path = tmp_path / "model.npz"
    write_model(path, net)

    n_layers = len(sizes) - 1
    with np.load(path) as archive:
        names = set(archive.files)
        stored_sizes = archive["layer_sizes"]
        stored_activation = archive["activation"]
        stored_w1 = archive["W1"]
    expected_names = {f"W{k}" for k in range(1, n_layers + 1)}
    expected_names |= {f"b{k}" for k in range(1, n_layers + 1)}
    assert names == expected_names | {"layer_sizes", "activation", "output"}
    np.testing.assert_array_equal(stored_sizes, sizes)
    assert stored_activation.ndim == 0
    assert str(stored_activation) == "sigmoid"
    assert stored_w1.shape == (sizes[1], sizes[0])  # algorithm.md's orientation

    back = read_model(path, n_inputs=64)
    assert (back.activation, back.output) == ("sigmoid", "sigmoid")
    assert back.layer_sizes == sizes
    for got, want in zip(parameters(back), parameters(net), strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_layers_kinds_round_trip_too(tmp_path):
    net = initialise([64, 5, 10], "he", seed=1, dtype="float32")
    path = tmp_path / "model.npz"
    write_model(path, Network(net.weights, net.biases, "relu", "softmax"))
    back = read_model(path)
    assert (back.activation, back.output, back.dtype) == ("relu", "softmax", np.float32)


def test_model_weights_not_matching_layer_sizes_are_refused(tmp_path, model_arrays):
    model_arrays["W1"] = model_arrays["W1"][:, :32]
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "W1", "[64, 30, 10]")


def test_model_layer_sizes_not_matching_weights_are_refused(tmp_path, model_arrays):
    model_arrays["layer_sizes"] = np.array([64, 31, 10])
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "[64, 31, 10]")


def test_model_missing_a_layer_is_refused(tmp_path, model_arrays):
    model_arrays["layer_sizes"] = np.array([64, 30, 10, 5])
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "W3")


def test_model_without_activation_is_refused(tmp_path, model_arrays):
    del model_arrays["activation"]
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "not a model file")


def test_model_with_an_unknown_activation_is_refused(tmp_path, model_arrays):
    model_arrays["activation"] = np.asarray("gelu")
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "'gelu'", "sigmoid, tanh, relu")


def test_model_with_non_finite_weight_is_refused(tmp_path, model_arrays):
    model_arrays["W2"][0, 0] = np.nan
    path = tmp_path / "model.npz"
    np.savez(path, **model_arrays)
    assert_artifact_error(read_model, path, "'W2'")


def test_model_input_width_must_match_the_data(tmp_path):
    path = tmp_path / "model.npz"
    write_model(path, initialise([64, 30, 10], "uniform", seed=0))
    assert_artifact_error(lambda p: read_model(p, n_inputs=32), path, "64", "32")
    read_model(path, n_inputs=64)  # the matching width is accepted


# ---- ensembles -----------------------------------------------------------------------------


def small_ensemble(members: int = 3) -> Ensemble:
    nets = [initialise([64, 7, 5, 10], "he", seed, "float32") for seed in range(members)]
    return Ensemble([Network(n.weights, n.biases, "relu", "softmax") for n in nets])


def test_an_ensemble_round_trips_with_its_members_stacked(tmp_path):
    ensemble = small_ensemble()
    path = tmp_path / "model.npz"
    write_model(path, ensemble)
    with np.load(path) as archive:
        assert int(archive["members"]) == 3
        assert archive["W1"].shape == (3, 7, 64)
        assert archive["b3"].shape == (3, 10)
    back = read_model(path, n_inputs=64)
    assert isinstance(back, Ensemble)
    assert (back.layer_sizes, back.activation, back.output) == ([64, 7, 5, 10], "relu", "softmax")
    assert back.dtype == np.float32
    for got, want in zip(back.members, ensemble.members, strict=True):
        for a, b in zip(parameters(got), parameters(want), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_plain_network_file_has_no_members_array(tmp_path):
    path = tmp_path / "model.npz"
    write_model(path, initialise([64, 30, 10], "uniform", seed=0))
    with np.load(path) as archive:
        assert "members" not in archive.files
    assert isinstance(read_model(path), Network)


@pytest.fixture
def ensemble_arrays(tmp_path):
    path = tmp_path / "valid_ensemble.npz"
    write_model(path, small_ensemble())
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def test_an_ensemble_whose_members_disagree_with_its_count_is_refused(tmp_path, ensemble_arrays):
    ensemble_arrays["members"] = np.asarray(4)
    path = tmp_path / "model.npz"
    np.savez(path, **ensemble_arrays)
    assert_artifact_error(read_model, path, "W1", "4 members", "(4, 7, 64)")


def test_an_ensemble_missing_its_member_axis_is_refused(tmp_path, ensemble_arrays):
    ensemble_arrays["W2"] = ensemble_arrays["W2"][0]
    path = tmp_path / "model.npz"
    np.savez(path, **ensemble_arrays)
    assert_artifact_error(read_model, path, "'W2'", "3 dimension(s)")


def test_an_ensemble_of_no_members_is_refused(tmp_path, ensemble_arrays):
    arrays = {k: (v[:0] if k[0] in "Wb" else v) for k, v in ensemble_arrays.items()}
    arrays["members"] = np.asarray(0)
    path = tmp_path / "model.npz"
    np.savez(path, **arrays)
    assert_artifact_error(read_model, path, "'members' is 0")
