"""The model file: a trained network as an npz archive, and reading one back checked.

``W1..WL`` and ``b1..bL`` in the orientation of algorithm.md, plus what rebuilds the
network: ``layer_sizes``, ``activation`` and ``output``. The served model reads it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.core.activations import HIDDEN, OUTPUTS
from digits_nn.core.network import Network
from digits_nn.data.files import check_array, load_npz, read_npz, write_npz
from digits_nn.errors import ArtifactError


def write_model(path: str | Path, network: Network) -> None:
    """W1..WL and b1..bL in the orientation of algorithm.md, plus what rebuilds the net:
    the layer sizes, the hidden activation and the output layer."""
    arrays: dict[str, np.ndarray] = {}
    for layer, (W, b) in enumerate(zip(network.weights, network.biases), start=1):
        arrays[f"W{layer}"] = W
        arrays[f"b{layer}"] = b
    arrays["layer_sizes"] = np.asarray(network.layer_sizes, dtype=np.int64)
    arrays["activation"] = np.asarray(network.activation)
    arrays["output"] = np.asarray(network.output)
    write_npz(path, **arrays)


def read_model(path: str | Path, n_inputs: int | None = None) -> Network:
    """The network; with ``n_inputs``, check that it fits the data."""
    arrays = load_npz(path)
    if "layer_sizes" not in arrays or "activation" not in arrays:
        raise ArtifactError(f"{path}: not a model file (no 'layer_sizes' or 'activation').")
    sizes = arrays["layer_sizes"]
    check_array(path, "layer_sizes", sizes, "i", 1)
    n_layers = len(sizes) - 1
    spec = {"layer_sizes": ("i", 1), "activation": ("U", 0), "output": ("U", 0)}
    spec |= {f"W{k}": ("f", 2) for k in range(1, n_layers + 1)}
    spec |= {f"b{k}": ("f", 1) for k in range(1, n_layers + 1)}
    arrays = read_npz(path, spec)
    weights = [arrays[f"W{k}"] for k in range(1, n_layers + 1)]
    biases = [arrays[f"b{k}"] for k in range(1, n_layers + 1)]
    for k, (W, b) in enumerate(zip(weights, biases), start=1):
        expected = (int(sizes[k]), int(sizes[k - 1]))
        if W.shape != expected or b.shape != (expected[0],):
            raise ArtifactError(
                f"{path}: W{k} is {W.shape} and b{k} is {b.shape}, but layer_sizes"
                f" {sizes.tolist()} needs {expected} and ({expected[0]},)."
            )
    if n_inputs is not None and sizes[0] != n_inputs:
        raise ArtifactError(
            f"{path}: the model takes {sizes[0]} inputs but the data has {n_inputs} columns;"
            " retrain it (`dvc repro train`)."
        )
    activation, output = str(arrays["activation"]), str(arrays["output"])
    if activation not in HIDDEN or output not in OUTPUTS:
        raise ArtifactError(
            f"{path}: unknown activation {activation!r} or output {output!r}; allowed:"
            f" {', '.join(HIDDEN)} and {', '.join(OUTPUTS)}."
        )
    return Network(weights, biases, activation, output)
