"""Ticket masks: `{layer name: b(s)}` of a model, their `.npz` files, and their fraction kept."""

import numpy as np

from keras_lottery import io_utils
from keras_lottery.layers import masked_layers


def extract_masks(model):
    """Returns the ticket masks `{layer name: b(s) as a bool array}` of `model`."""
    return {layer.name: layer.ticket_mask() for layer in masked_layers(model)}


def remaining_fraction(masks):
    """Fraction of maskable weights kept by `masks` (0..1)."""
    total = sum(mask.size for mask in masks.values())
    return float(sum(int(mask.sum()) for mask in masks.values()) / total) if total else 1.0


def save_masks(path, masks):
    """Writes `masks` to a compressed `.npz` file (atomically, no pickle)."""

    def write(tmp_path):
        with open(tmp_path, "wb") as handle:
            np.savez_compressed(handle, **{name: np.asarray(m, bool) for name, m in masks.items()})

    io_utils.atomic_write(path, write, suffix=".npz")


def load_masks(path):
    """Reads masks written by `save_masks` (`allow_pickle=False`)."""
    with io_utils.open_npz(path, "ticket masks") as data:
        return {name: data[name].astype(bool) for name in data.files}


def apply_masks(model, masks):
    """Sets the ticket masks of `model`'s masked layers; names and shapes must match."""
    layers = {layer.name: layer for layer in masked_layers(model)}
    missing = sorted(set(layers) - set(masks))
    unknown = sorted(set(masks) - set(layers))
    if missing or unknown:
        raise ValueError(
            f"Ticket masks do not match the model: missing {missing}, unknown {unknown}."
        )
    for name, mask in masks.items():
        layers[name].set_ticket_mask(mask)
