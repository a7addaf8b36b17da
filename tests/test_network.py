"""The network, backpropagation and the training loop against the maths of algorithm.md."""

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_nn import config, data, evaluate, modern, network, pipeline, train
from digits_nn.errors import TrainingDiverged

# ---- helpers -----------------------------------------------------------------------------


def random_network(layer_sizes, rng, scale=0.5):
    """Small normal weights, so the sigmoids work in their sensitive range."""
    weights = [
        rng.normal(size=(n_out, n_in)) * scale for n_in, n_out in itertools.pairwise(layer_sizes)
    ]
    biases = [rng.normal(size=n_out) * scale for n_out in layer_sizes[1:]]
    return network.Network(weights=weights, biases=biases)


def batch_cost(net, X, Y):
    return network.half_squared_error(Y, network.forward(net, X)[-1])


def numerical_gradients(net, X, Y, eps=1e-6):
    """Central differences of the mean half squared error, one parameter at a time."""
    grads = []
    for params in (net.weights, net.biases):
        layer_grads = []
        for array in params:
            grad = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                saved = array[index]
                array[index] = saved + eps
                plus = batch_cost(net, X, Y)
                array[index] = saved - eps
                minus = batch_cost(net, X, Y)
                array[index] = saved
                grad[index] = (plus - minus) / (2 * eps)
            layer_grads.append(grad)
        grads.append(layer_grads)
    return grads


def flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def gradient_relative_error(net, X, Y):
    analytic = modern.backward(net, modern.forward(net, X), Y, 0.0, len(X))
    num_w, num_b = numerical_gradients(net, X, Y)
    ana = flat([*analytic.weights, *analytic.biases])
    num = flat([*num_w, *num_b])
    denom = np.linalg.norm(ana) + np.linalg.norm(num)
    assert denom > 0, "a zero gradient would make the check vacuous"
    return np.linalg.norm(ana - num) / denom


def random_gradient_error(layer_sizes, m, seed):
    """Backprop against central differences on a random network, inputs and targets."""
    rng = np.random.default_rng(seed)
    net = random_network(layer_sizes, rng)
    X = rng.normal(size=(m, layer_sizes[0]))
    Y = rng.random(size=(m, layer_sizes[-1]))
    return gradient_relative_error(net, X, Y)


def digits_rows(n_rows):
    scaled = data.standardise(data.load_digits())
    return scaled.X[:n_rows], data.one_hot(scaled.y[:n_rows])


@pytest.fixture(scope="module")
def classic_data():
    return pipeline.prepare_data(config.parse({}))


# ---- 1. forward pass ---------------------------------------------------------------------


def test_forward_reproduces_the_worked_example():
    net = network.Network(
        weights=[np.array([[0.2] * 3, [0.4] * 3, [0.6] * 3]), np.array([[0.5, 0.5, 0.5]])],
        biases=[np.array([0.8, 0.8, 0.8]), np.array([0.2])],
    )
    X = np.array([[1.5, 2.0, 3.0]])

    activations = network.forward(net, X)

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
    net = network.Network(
        weights=[8.0 * np.eye(5), 6.0 * np.eye(5)], biases=[np.full(5, -4.0), np.zeros(5)]
    )
    np.testing.assert_array_equal(network.predict(net, X), labels)
    # A random network, against its outputs computed here from the formulas.
    rng = np.random.default_rng(3)
    net = random_network([4, 6, 5], rng, scale=2.0)
    X = rng.normal(size=(20, 4))
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    out = sig(sig(X @ net.weights[0].T + net.biases[0]) @ net.weights[1].T + net.biases[1])
    np.testing.assert_array_equal(network.predict(net, X), out.argmax(axis=1))


def test_classic_cost_is_mean_plain_norm_not_half_squared():
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = np.array([[0.7, 0.4], [0.0, 1.0]])
    # Row 1: error (0.3, -0.4), norm 0.5, half squared 0.125; row 2: zero error.
    assert network.classic_cost(Y, out) == pytest.approx(0.25, abs=1e-15)
    assert network.half_squared_error(Y, out) == pytest.approx(0.0625, abs=1e-15)


# ---- 2. backprop against finite differences ----------------------------------------------


@pytest.mark.parametrize(
    ("layer_sizes", "m", "seed"),
    [([3, 4, 2], 5, 0), ([64, 30, 10], 4, 1), ([5, 7, 6, 3], 6, 2), ([2, 3, 3, 3, 2], 3, 3)],
    ids=["3-4-2", "64-30-10", "5-7-6-3", "2-3-3-3-2"],
)
def test_backprop_matches_central_differences(layer_sizes, m, seed):
    assert random_gradient_error(layer_sizes, m, seed) <= 1e-6


def test_backprop_matches_central_differences_with_classic_init():
    rng = np.random.default_rng(10)
    net = network.init_uniform([5, 7, 6, 3], seed=4)
    X = rng.uniform(-1, 1, size=(5, 5))
    Y = rng.random(size=(5, 3))
    assert gradient_relative_error(net, X, Y) <= 1e-6


def test_backward_returns_gradients_shaped_like_the_network():
    rng = np.random.default_rng(5)
    net = random_network([5, 7, 6, 3], rng)
    X = rng.normal(size=(4, 5))
    grads = modern.backward(net, modern.forward(net, X), rng.random(size=(4, 3)), 0.0, len(X))
    assert [g.shape for g in grads.weights] == [w.shape for w in net.weights]
    assert [g.shape for g in grads.biases] == [b.shape for b in net.biases]


def test_backward_gradients_are_means_not_sums_over_the_batch():
    rng = np.random.default_rng(6)
    net = random_network([3, 4, 2], rng)
    X = rng.normal(size=(1, 3))
    Y = rng.random(size=(1, 2))
    single = modern.backward(net, modern.forward(net, X), Y, 0.0, len(X))
    X3, Y3 = np.repeat(X, 3, axis=0), np.repeat(Y, 3, axis=0)
    tripled = modern.backward(net, modern.forward(net, X3), Y3, 0.0, len(X3))
    for a, b in zip(
        [*single.weights, *single.biases], [*tripled.weights, *tripled.biases], strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)


# ---- 3. the per-sample oracle ------------------------------------------------------------


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def oracle_step(weights, biases, X, Y, alpha):
    """One update written as in the tutorial's looped version: per sample, per node."""
    n_layers = len(weights)
    sum_dW = [np.zeros_like(W) for W in weights]
    sum_db = [np.zeros_like(b) for b in biases]
    for x, y in zip(X, Y, strict=True):
        # Forward: h[0] = x, z[l+1]_i = W[l]_i . h[l] + b[l]_i, h = f(z).
        h = [np.array(x, dtype=np.float64)]
        for W, b in zip(weights, biases, strict=True):
            nxt = np.empty(W.shape[0])
            for i in range(W.shape[0]):
                nxt[i] = _sig(float(np.dot(W[i], h[-1])) + b[i])
            h.append(nxt)
        # Output delta: -(y - h) * f'(z), f'(z) = f(z)(1 - f(z)).
        out = h[-1]
        delta = np.empty(len(out))
        for i in range(len(out)):
            delta[i] = -(y[i] - out[i]) * out[i] * (1.0 - out[i])
        for layer in range(n_layers - 1, -1, -1):
            W = weights[layer]
            for i in range(W.shape[0]):
                sum_dW[layer][i] += delta[i] * h[layer]
                sum_db[layer][i] += delta[i]
            if layer > 0:
                prev = h[layer]
                new_delta = np.empty(W.shape[1])
                for j in range(W.shape[1]):
                    new_delta[j] = float(np.dot(W[:, j], delta)) * prev[j] * (1.0 - prev[j])
                delta = new_delta
    m = len(X)
    for layer in range(n_layers):
        weights[layer] -= alpha / m * sum_dW[layer]
        biases[layer] -= alpha / m * sum_db[layer]


def test_oracle_single_step_matches_hand_computed_update():
    # The oracle itself, checked on a 1-1 network by hand: h = f(w x + b),
    # dJ/dw = -(y - h) h (1 - h) x.
    w, b, x, y, alpha = 0.3, -0.2, 2.0, 1.0, 0.5
    h = _sig(w * x + b)
    d = -(y - h) * h * (1 - h)
    weights, biases = [np.array([[w]])], [np.array([b])]
    oracle_step(weights, biases, np.array([[x]]), np.array([[y]]), alpha)
    assert weights[0][0, 0] == pytest.approx(w - alpha * d * x, abs=1e-15)
    assert biases[0][0] == pytest.approx(b - alpha * d, abs=1e-15)


@pytest.mark.parametrize("source", ["digits-64-30-10", "random-5-7-6-3"])
def test_vectorised_training_matches_per_sample_oracle(source):
    if source == "digits-64-30-10":
        X, Y = digits_rows(40)
        net = network.init_uniform([64, 30, 10], seed=0)
    else:
        rng = np.random.default_rng(7)
        X = rng.normal(size=(25, 5))
        Y = rng.random(size=(25, 3))
        net = network.init_uniform([5, 7, 6, 3], seed=1)
    reference = copy.deepcopy(net)
    start = copy.deepcopy(net)
    alpha, iterations = 0.25, 50

    result = train.gradient_descent(net, X, Y, alpha, iterations)
    for _ in range(iterations):
        oracle_step(reference.weights, reference.biases, X, Y, alpha)

    assert result.network is net
    # Training must really have moved the weights, or the comparison proves nothing.
    assert not np.allclose(start.weights[0], net.weights[0], rtol=0, atol=1e-6)
    for got, want in zip(
        [*net.weights, *net.biases], [*reference.weights, *reference.biases], strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_every_layer_including_the_first_is_updated():
    X, Y = digits_rows(40)
    net = network.init_uniform([64, 30, 10], seed=0)
    before = copy.deepcopy(net)
    train.gradient_descent(net, X, Y, 0.25, 5)
    for new, old in zip(
        [*net.weights, *net.biases], [*before.weights, *before.biases], strict=True
    ):
        assert not np.array_equal(new, old)


# ---- 4. the cost curves ------------------------------------------------------------------


def test_gradient_descent_records_cost_before_each_update_and_decreases(classic_data):
    _, split, onehot = classic_data
    X, Y = split.X_train, onehot.Y_train
    net = network.init_uniform([64, 30, 10], seed=0)
    initial = copy.deepcopy(net)

    result = train.gradient_descent(net, X, Y, 0.25, 200)

    assert isinstance(result, train.TrainingResult)
    assert result.cost_curve.shape == (200,)
    assert result.classic_cost_curve.shape == (200,)
    out0 = network.forward(initial, X)[-1]
    assert result.cost_curve[0] == network.half_squared_error(Y, out0)
    assert result.classic_cost_curve[0] == network.classic_cost(Y, out0)
    # The last recorded cost is that of the weights before the last update, not after it.
    after = batch_cost(net, X, Y)
    assert after < result.cost_curve[-1]
    assert result.final_cost == result.cost_curve[-1]
    assert np.all(np.diff(result.cost_curve) < 0)
    assert np.all(np.diff(result.classic_cost_curve) < 0)
    assert result.cost_curve[-1] < 0.75 * result.cost_curve[0]


def test_zero_iterations_returns_empty_curves_and_untouched_network():
    X, Y = digits_rows(10)
    net = network.init_uniform([64, 30, 10], seed=0)
    before = copy.deepcopy(net)
    result = train.gradient_descent(net, X, Y, 0.25, 0)
    assert result.cost_curve.shape == (0,)
    for new, old in zip(net.weights, before.weights, strict=True):
        np.testing.assert_array_equal(new, old)


# ---- 5. divergence -----------------------------------------------------------------------


def _diverge(net, X, Y, alpha, iterations=20):
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        train.gradient_descent(net, X, Y, alpha, iterations)
    return info.value


def _check_diverged(error, alpha, failing_iteration):
    message = str(error)
    assert f"train.alpha={alpha}" in message
    assert f"iteration {failing_iteration}" in message
    assert len(error.partial_cost) == failing_iteration - 1
    assert len(error.partial_classic_cost) == failing_iteration - 1
    assert np.all(np.isfinite(error.partial_cost))
    assert np.all(np.isfinite(error.partial_classic_cost))


def test_infinite_alpha_raises_training_diverged_at_the_second_iteration():
    X, Y = digits_rows(40)
    net = network.init_uniform([64, 30, 10], seed=0)
    error = _diverge(net, X, Y, alpha=float("inf"))
    # Iteration 1 costs the finite initial weights; its update makes them non-finite.
    _check_diverged(error, float("inf"), failing_iteration=2)
    assert error.partial_cost[0] == batch_cost(network.init_uniform([64, 30, 10], 0), X, Y)


def test_infinite_input_raises_training_diverged():
    X, Y = digits_rows(40)
    X = X.copy()
    X[3, 10] = np.inf
    error = _diverge(network.init_uniform([64, 30, 10], seed=0), X, Y, alpha=0.25)
    _check_diverged(error, 0.25, failing_iteration=2)


def test_nan_weight_raises_training_diverged_at_the_first_iteration():
    X, Y = digits_rows(40)
    net = network.init_uniform([64, 30, 10], seed=0)
    net.weights[1][0, 0] = np.nan
    error = _diverge(net, X, Y, alpha=0.5)
    _check_diverged(error, 0.5, failing_iteration=1)


# ---- 6. initialisation -------------------------------------------------------------------


def test_init_uniform_is_seeded_and_reproducible():
    a = network.init_uniform([64, 30, 10], seed=0)
    b = network.init_uniform([64, 30, 10], seed=0)
    c = network.init_uniform([64, 30, 10], seed=1)
    for x, y in zip([*a.weights, *a.biases], [*b.weights, *b.biases], strict=True):
        np.testing.assert_array_equal(x, y)
    for x, z in zip([*a.weights, *a.biases], [*c.weights, *c.biases], strict=True):
        assert not np.array_equal(x, z)


def test_init_uniform_draws_in_order_w1_b1_w2_b2_from_random_sample():
    rng = np.random.RandomState(42)
    expected = [
        rng.random_sample((3, 4)),
        rng.random_sample(3),
        rng.random_sample((2, 3)),
        rng.random_sample(2),
    ]
    net = network.init_uniform([4, 3, 2], seed=42)
    got = [net.weights[0], net.biases[0], net.weights[1], net.biases[1]]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_init_uniform_shapes_range_and_dtype(dtype):
    sizes = [64, 100, 50, 10]
    net = network.init_uniform(sizes, seed=3, dtype=dtype)
    assert net.layer_sizes == sizes
    assert [w.shape for w in net.weights] == [(100, 64), (50, 100), (10, 50)]
    assert [b.shape for b in net.biases] == [(100,), (50,), (10,)]
    for array in [*net.weights, *net.biases]:
        assert array.dtype == np.dtype(dtype)
        assert array.min() >= 0.0
        assert array.max() < 1.0
    everything = flat([*net.weights, *net.biases])
    # Uniform, not a constant or a narrow band: mean near 1/2 over ~12k draws.
    assert everything.mean() == pytest.approx(0.5, abs=0.02)


def test_float32_training_stays_float32():
    X, Y = digits_rows(40)
    net = network.init_uniform([64, 30, 10], seed=0, dtype="float32")
    train.gradient_descent(net, X.astype(np.float32), Y.astype(np.float32), 0.25, 5)
    assert all(a.dtype == np.float32 for a in [*net.weights, *net.biases])


# ---- 7. the classic reference result -----------------------------------------------------


def test_classic_run_reproduces_reference_accuracy_and_costs(classic_data):
    cfg = config.parse({})
    _, split, onehot = classic_data
    assert (len(split.y_train), len(split.y_test)) == (1078, 719)

    result = pipeline.fit(cfg, split, onehot, progress=False)
    evaluation = evaluate.evaluate(result.network, split)

    assert result.network.layer_sizes == [64, 30, 10]
    assert len(result.cost_curve) == 3000
    assert round(evaluation.test_accuracy * 719) == 640
    assert evaluation.test_accuracy == pytest.approx(640 / 719, abs=1e-12)
    assert result.final_cost == pytest.approx(0.1165, abs=1e-4)
    assert result.classic_cost_curve[-1] == pytest.approx(0.4235, abs=1e-4)
    assert evaluation.confusion.sum() == 719
    assert np.trace(evaluation.confusion) == 640


# ---- 8. properties -----------------------------------------------------------------------

architectures = st.lists(st.integers(min_value=1, max_value=8), min_size=2, max_size=4)


@settings(max_examples=25, deadline=None)
@given(sizes=architectures, m=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_forward_outputs_are_probabilities_of_the_right_shape(sizes, m, seed):
    rng = np.random.default_rng(seed)
    net = random_network(sizes, rng, scale=3.0)
    X = rng.normal(size=(m, sizes[0])) * 5

    activations = network.forward(net, X)

    assert len(activations) == len(sizes)
    for h, n in zip(activations[1:], sizes[1:], strict=True):
        assert h.shape == (m, n)
        assert np.all((h >= 0.0) & (h <= 1.0))
    labels = network.predict(net, X)
    assert labels.shape == (m,)
    assert np.issubdtype(labels.dtype, np.integer)
    assert np.all((labels >= 0) & (labels < sizes[-1]))


@settings(max_examples=25, deadline=None)
@given(sizes=architectures, m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_backprop_matches_central_differences_on_random_small_nets(sizes, m, seed):
    assert random_gradient_error(sizes, m, seed) <= 1e-6
