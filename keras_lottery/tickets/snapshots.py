"""Weight snapshots of a model's weights: the rewind point `w_k` and ticket starting weights.

A snapshot holds every variable of the model except the mask state (`s`,
`beta`), which the methods reset by their own rules. It is keyed by the
variable's position in `model.weights`, so it transfers to a clone of the model
(`keras.models.clone_model`) whose layers match.
"""

import numpy as np

from keras_lottery import io_utils
from keras_lottery.layers import masked_layers


def _mask_variable_ids(model):
    ids = set()
    for layer in masked_layers(model):
        ids.update(id(variable) for variable in layer.mask_variables())
    return ids


def snapshot(model):
    """Copies every non-mask variable of `model` (weights, biases, BN statistics)."""
    skip = _mask_variable_ids(model)
    return {
        index: (variable.path, np.array(variable.numpy(), copy=True))
        for index, variable in enumerate(model.weights)
        if id(variable) not in skip
    }


def restore(model, weights):
    """Assigns a `snapshot` to `model` (the same model or a clone of it)."""
    variables = model.weights
    for index, (path, value) in weights.items():
        if index >= len(variables) or tuple(variables[index].shape) != value.shape:
            raise ValueError(
                f"Snapshot variable {path!r} {value.shape} does not match the model "
                f"(has {len(variables)} variables)."
            )
        variables[index].assign(value)


def freeze_weights(model):
    """Supermask setting: makes every variable but the mask logits `s` untrainable.

    Afterwards only `s` trains; `w` (and biases) stay at their initial values.
    """
    mask_ids = {id(layer.mask_logits) for layer in masked_layers(model)}
    if not mask_ids:
        raise ValueError("freeze_weights: the model has no masked layers.")
    for variable in model.weights:
        if id(variable) not in mask_ids:
            variable.trainable = False
    return model


def save_snapshot(path, weights):
    """Writes a `snapshot` to an `.npz` file atomically (no pickle)."""

    def write(tmp_path):
        with open(tmp_path, "wb") as handle:
            np.savez(handle, **{f"{index}|{path_}": value
                                for index, (path_, value) in weights.items()})

    io_utils.atomic_write(path, write, suffix=".npz")


def load_snapshot(path):
    """Reads a snapshot written by `save_snapshot` (`allow_pickle=False`)."""
    with io_utils.open_npz(path, "weight snapshot") as data:
        weights = {}
        for key in data.files:
            index, _, variable_path = key.partition("|")
            weights[int(index)] = (variable_path, data[key])
        return weights
