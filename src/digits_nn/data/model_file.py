"""The model file: a trained network as an npz archive, and reading one back checked.

``W1..WL`` and ``b1..bL`` in the orientation of algorithm.md, plus what rebuilds the
network: ``layer_sizes``, ``activation`` and ``output``. An ensemble's file adds
``members`` (how many networks) and stacks its members' arrays along a first axis:
``Wk`` is ``(members, n[k], n[k-1])`` and ``bk`` is ``(members, n[k])``. The served
model reads it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_nn.core.activations import HIDDEN, OUTPUTS
from digits_nn.core.network import Ensemble, Model, Network, networks
from digits_nn.data.files import check_array, load_npz, read_npz, write_npz
from digits_nn.errors import ArtifactError


def write_model(path: str | Path, model: Model) -> None:
    """W1..WL and b1..bL in the orientation of algorithm.md, plus what rebuilds the net:
    the layer sizes, the hidden activation and the output layer; for an ensemble, the
    number of members, whose arrays are stacked."""
    nets = networks(model)
    ensemble = isinstance(model, Ensemble)
    arrays: dict[str, np.ndarray] = {}
    for layer in range(1, len(model.layer_sizes)):
        W = [net.weights[layer - 1] for net in nets]
        b = [net.biases[layer - 1] for net in nets]
        arrays[f"W{layer}"] = np.stack(W) if ensemble else W[0]
        arrays[f"b{layer}"] = np.stack(b) if ensemble else b[0]
    arrays["layer_sizes"] = np.asarray(model.layer_sizes, dtype=np.int64)
    arrays["activation"] = np.asarray(model.activation)
    arrays["output"] = np.asarray(model.output)
    if ensemble:
        arrays["members"] = np.asarray(len(nets), dtype=np.int64)
    write_npz(path, **arrays)


def read_model(path: str | Path, n_inputs: int | None = None) -> Model:
    """The network, or the ensemble; with ``n_inputs``, check that it fits the data."""
    arrays = load_npz(path)
    if "layer_sizes" not in arrays or "activation" not in arrays:
        raise ArtifactError(f"{path}: not a model file (no 'layer_sizes' or 'activation').")
    sizes = arrays["layer_sizes"]
    check_array(path, "layer_sizes", sizes, "i", 1)
    n_layers = len(sizes) - 1
    stacked = int("members" in arrays)  # an ensemble's arrays have one more axis
    spec = {"layer_sizes": ("i", 1), "activation": ("U", 0), "output": ("U", 0)}
    spec |= {"members": ("i", 0)} if stacked else {}
    spec |= {f"W{k}": ("f", 2 + stacked) for k in range(1, n_layers + 1)}
    spec |= {f"b{k}": ("f", 1 + stacked) for k in range(1, n_layers + 1)}
    arrays = read_npz(path, spec)
    lead = (int(arrays["members"]),) if stacked else ()
    if stacked and lead[0] < 1:
        raise ArtifactError(f"{path}: 'members' is {lead[0]}; an ensemble has at least one.")
    weights = [arrays[f"W{k}"] for k in range(1, n_layers + 1)]
    biases = [arrays[f"b{k}"] for k in range(1, n_layers + 1)]
    for k, (W, b) in enumerate(zip(weights, biases), start=1):
        expected = (*lead, int(sizes[k]), int(sizes[k - 1]))
        if W.shape != expected or b.shape != expected[:-1]:
            raise ArtifactError(
                f"{path}: W{k} is {W.shape} and b{k} is {b.shape}, but layer_sizes"
                f" {sizes.tolist()}{f' and {lead[0]} members' if stacked else ''} needs"
                f" {expected} and {expected[:-1]}."
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
    if not stacked:
        return Network(weights, biases, activation, output)
    members = [
        Network([W[j] for W in weights], [b[j] for b in biases], activation, output)
        for j in range(lead[0])
    ]
    return Ensemble(members)
