"""The network's parameters: how each initialisation draws them, copies of them, and ensembles."""

from __future__ import annotations

import numpy as np
import pytest

from digits_nn.core.network import Ensemble, Network, initialise, networks
from helpers import parameters


def test_init_uniform_is_seeded_and_reproducible():
    a = initialise([64, 30, 10], "uniform", seed=0)
    b = initialise([64, 30, 10], "uniform", seed=0)
    c = initialise([64, 30, 10], "uniform", seed=1)
    for x, y in zip(parameters(a), parameters(b), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, z in zip(parameters(a), parameters(c), strict=True):
        assert not np.array_equal(x, z)


def test_init_uniform_draws_in_order_w1_b1_w2_b2_from_random_sample():
    rng = np.random.RandomState(42)
    expected = [
        rng.random_sample((3, 4)),
        rng.random_sample(3),
        rng.random_sample((2, 3)),
        rng.random_sample(2),
    ]
    net = initialise([4, 3, 2], "uniform", seed=42)
    got = [net.weights[0], net.biases[0], net.weights[1], net.biases[1]]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_init_uniform_shapes_range_and_dtype(dtype):
    sizes = [64, 100, 50, 10]
    net = initialise(sizes, "uniform", seed=3, dtype=dtype)
    assert net.layer_sizes == sizes
    assert net.dtype == np.dtype(dtype)
    assert [w.shape for w in net.weights] == [(100, 64), (50, 100), (10, 50)]
    assert [b.shape for b in net.biases] == [(100,), (50,), (10,)]
    for array in parameters(net):
        assert array.dtype == np.dtype(dtype)
        assert array.min() >= 0.0
        assert array.max() < 1.0
    everything = np.concatenate([a.ravel() for a in parameters(net)])
    # Uniform, not a constant or a narrow band: mean near 1/2 over ~12k draws.
    assert everything.mean() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_scaled_initialisations_have_zero_mean_and_the_promised_variance(scheme: str) -> None:
    net = initialise([400, 300, 10], scheme, seed=1)
    W = net.weights[0]
    expected = 2.0 / (400 + 300) if scheme == "xavier" else 2.0 / 400
    assert abs(W.mean()) < 0.01 * np.sqrt(expected)
    assert W.var() == pytest.approx(expected, rel=0.02)
    assert not net.biases[0].any()


def test_initialise_defaults_to_the_classic_float64_sigmoid_network() -> None:
    for scheme in ("uniform", "he"):
        net = initialise([3, 4, 2], scheme, 1)
        assert (net.activation, net.output) == ("sigmoid", "sigmoid")
        assert {p.dtype for p in parameters(net)} == {np.dtype("float64")}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_scaled_initialisations_are_seeded_normal_draws_scaled_by_hand(dtype: str) -> None:
    """xavier: N(0, 2 / (n_in + n_out)); he: N(0, 2 / n_in); biases zero; drawn from
    RandomState(seed) layer by layer."""
    sizes = [5, 4, 3]
    for scheme, variance in (("xavier", lambda i, o: 2 / (i + o)), ("he", lambda i, o: 2 / i)):
        net = initialise(sizes, scheme, 9, dtype)
        rng = np.random.RandomState(9)
        for W, b, (n_in, n_out) in zip(net.weights, net.biases, [(5, 4), (4, 3)]):
            expected = rng.standard_normal((n_out, n_in)) * np.sqrt(variance(n_in, n_out))
            np.testing.assert_array_equal(W, expected.astype(dtype))
            assert W.dtype == b.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(b, np.zeros(n_out))


def test_a_copy_of_the_weights_is_the_same_network_sharing_no_array() -> None:
    """What early stopping restores and the budget sweeps keep: every array, the hidden
    activation and the output layer, in arrays of its own."""
    net = initialise([3, 4, 2], "xavier", 5, "float32")
    net = Network(net.weights, net.biases, "relu", "softmax")
    copy = net.copy()
    assert (copy.activation, copy.output) == ("relu", "softmax")
    for a, b in zip(parameters(copy), parameters(net)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and not np.shares_memory(a, b)


def test_assign_overwrites_the_parameters_in_place_from_another_network() -> None:
    """What early stopping does with the best weights it kept: the arrays stay the
    network's own (the caller may hold them), their values become the source's."""
    net = initialise([3, 4, 2], "uniform", 0)
    held = parameters(net)
    source = initialise([3, 4, 2], "uniform", 1)
    net.assign(source)
    for array, kept, wanted in zip(parameters(net), held, parameters(source), strict=True):
        assert array is kept
        np.testing.assert_array_equal(array, wanted)
        assert not np.shares_memory(array, wanted)


def test_an_ensemble_has_its_members_shape_and_refuses_mixed_members() -> None:
    members = [initialise([64, 5, 10], "he", seed, "float32") for seed in (0, 1)]
    ensemble = Ensemble(members)
    assert ensemble.layer_sizes == [64, 5, 10]
    assert (ensemble.activation, ensemble.output) == ("sigmoid", "sigmoid")
    assert ensemble.dtype == np.float32
    assert networks(ensemble) == members
    assert networks(members[0]) == [members[0]]
    with pytest.raises(ValueError, match="one shape"):
        Ensemble([members[0], initialise([64, 6, 10], "he", 0)])
    relu = Network(members[1].weights, members[1].biases, "relu", "sigmoid")
    with pytest.raises(ValueError, match="one shape"):
        Ensemble([members[0], relu])
