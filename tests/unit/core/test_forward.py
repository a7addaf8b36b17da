"""The one forward pass and the one predict, against the maths of algorithm.md."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_nn.core.forward import forward, predict, probabilities
from digits_nn.core.network import Ensemble, Network, initialise
from helpers import random_network


def test_forward_reproduces_the_worked_example():
    net = Network(
        weights=[np.array([[0.2] * 3, [0.4] * 3, [0.6] * 3]), np.array([[0.5, 0.5, 0.5]])],
        biases=[np.array([0.8, 0.8, 0.8]), np.array([0.2])],
    )
    X = np.array([[1.5, 2.0, 3.0]])

    activations = forward(net, X)

    assert len(activations) == 3
    np.testing.assert_array_equal(activations[0], X)
    hidden, output = activations[1], activations[2]
    assert hidden.shape == (1, 3)
    assert output.shape == (1, 1)
    # The figures quoted in algorithm.md (given to 4 d.p.; 0.99099 is quoted as 0.9909).
    assert hidden[0] == pytest.approx([0.8909, 0.9677, 0.9909], abs=1e-4)
    assert output[0, 0] == pytest.approx(0.8354, abs=1e-4)
    # And the exact values: z = w * (1.5 + 2 + 3) + 0.8 for each hidden node.
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    exact_hidden = [sig(w * 6.5 + 0.8) for w in (0.2, 0.4, 0.6)]
    assert hidden[0] == pytest.approx(exact_hidden, abs=1e-12)
    assert output[0, 0] == pytest.approx(sig(0.5 * sum(exact_hidden) + 0.2), abs=1e-12)


def test_predict_is_argmax_of_the_output_layer():
    # Built so that the answer is known: input k lights hidden unit k (sigmoid(4) ~ 0.98,
    # the others sigmoid(-4) ~ 0.02), which lights output k the most.
    labels = np.array([3, 0, 4, 1, 1, 2, 0, 4])
    X = np.eye(5)[labels]
    net = Network(
        weights=[8.0 * np.eye(5), 6.0 * np.eye(5)], biases=[np.full(5, -4.0), np.zeros(5)]
    )
    np.testing.assert_array_equal(predict(net, X), labels)
    # A random network, against its outputs computed here from the formulas.
    rng = np.random.default_rng(3)
    net = random_network([4, 6, 5], rng, scale=2.0)
    X = rng.normal(size=(20, 4))
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    out = sig(sig(X @ net.weights[0].T + net.biases[0]) @ net.weights[1].T + net.biases[1])
    np.testing.assert_array_equal(predict(net, X), out.argmax(axis=1))


def test_predict_ranks_the_logits_where_saturated_sigmoid_outputs_tie() -> None:
    """The redesign's one predict ranks the output layer's logits for every network:
    sigmoid outputs that saturate to exactly 1.0 would tie, the logits do not."""
    net = Network([np.eye(3)], [np.zeros(3)])
    X = np.array([[40.0, 50.0, 45.0], [900.0, 800.0, 1000.0]])
    assert np.all(forward(net, X)[-1][:, :] == 1.0)  # every output saturated: a tie
    np.testing.assert_array_equal(predict(net, X), [1, 2])


def test_forward_is_silent_when_the_sigmoid_saturates() -> None:
    """exp(-z) overflowing to inf gives the sigmoid's right limit 0: not worth a warning."""
    net = initialise([3, 2, 2], "uniform", seed=0)
    X = np.full((4, 3), -1e4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = forward(net, X)
    assert np.all(out[1] == 0.0)


def test_softmax_outputs_are_distributions_and_predictions_are_labels() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 5))
    net = initialise([5, 7, 6, 4], "he", 0)
    net = Network(net.weights, net.biases, "relu", "softmax")
    out = forward(net, X)[-1]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    # Built so that the answer is known: input k passes the relu in unit k alone, and
    # output k gets the largest logit.
    labels = np.array([2, 0, 3, 3, 1, 0])
    built = Network([np.eye(4), 3.0 * np.eye(4)], [np.zeros(4), np.zeros(4)], "relu", "softmax")
    np.testing.assert_array_equal(predict(built, np.eye(4)[labels]), labels)


architectures = st.lists(st.integers(min_value=1, max_value=8), min_size=2, max_size=4)


@settings(max_examples=25, deadline=None)
@given(sizes=architectures, m=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_forward_outputs_are_probabilities_of_the_right_shape(sizes, m, seed):
    rng = np.random.default_rng(seed)
    net = random_network(sizes, rng, scale=3.0)
    X = rng.normal(size=(m, sizes[0])) * 5

    activations = forward(net, X)

    assert len(activations) == len(sizes)
    for h, n in zip(activations[1:], sizes[1:], strict=True):
        assert h.shape == (m, n)
        assert np.all((h >= 0.0) & (h <= 1.0))
    labels = predict(net, X)
    assert labels.shape == (m,)
    assert np.issubdtype(labels.dtype, np.integer)
    assert np.all((labels >= 0) & (labels < sizes[-1]))


# ---- ensembles -----------------------------------------------------------------------------


def softmax_network(seed: int, sizes=(64, 8, 10)) -> Network:
    net = initialise(list(sizes), "he", seed)
    return Network(net.weights, net.biases, "relu", "softmax")


@pytest.mark.parametrize("seeds", [(1, 2), (1, 2, 3)], ids=["two", "three"])
def test_an_ensembles_probabilities_are_the_mean_of_its_members_softmax(seeds) -> None:
    members = [softmax_network(seed) for seed in seeds]
    X = np.random.default_rng(0).normal(size=(25, 64))

    def softmax_by_hand(net: Network) -> np.ndarray:
        z = np.maximum(X @ net.weights[0].T + net.biases[0], 0) @ net.weights[1].T + net.biases[1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    expected = sum(softmax_by_hand(net) for net in members) / len(members)
    found = probabilities(Ensemble(members), X)
    np.testing.assert_allclose(found, expected, rtol=1e-12)
    np.testing.assert_allclose(found.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(predict(Ensemble(members), X), expected.argmax(axis=1))


def test_an_ensemble_can_outvote_its_first_member() -> None:
    """The vote is on the averaged probabilities, not on any one member's."""
    members = [softmax_network(seed) for seed in range(5)]
    X = np.random.default_rng(1).normal(size=(200, 64))
    ensemble = predict(Ensemble(members), X)
    assert not np.array_equal(ensemble, predict(members[0], X))


def test_a_one_member_ensemble_predicts_as_its_network() -> None:
    net = softmax_network(4)
    X = np.random.default_rng(2).normal(size=(50, 64))
    np.testing.assert_array_equal(predict(Ensemble([net]), X), predict(net, X))
    np.testing.assert_array_equal(probabilities(net, X), forward(net, X)[-1])
