"""Ticket masks: `{layer key: b(s)}` of a model, their `.npz` files, and their fraction kept.

A layer's key is its path of names from the model (`masked_layers_by_key`): its name for a
top-level layer (the keys of every file written before keys were paths), and
`"block_0/attention/query"` inside other layers, where names repeat."""

import numpy as np

from keras_lottery import io_utils
from keras_lottery.layers import masked_layers_by_key


def extract_masks(model):
    """Returns the ticket masks `{layer key: b(s) as a bool array}` of `model`."""
    return {key: layer.ticket_mask() for key, layer in masked_layers_by_key(model).items()}


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
    """Sets the ticket masks of `model`'s masked layers; keys and shapes must match. Masks
    keyed by layer name (files from before keys were paths) are matched by name when the
    names are unique."""
    layers = masked_layers_by_key(model)
    names = {layer.name: layer for layer in layers.values()}
    if set(masks) != set(layers) and set(masks) == set(names) and len(names) == len(layers):
        layers = names
    missing = sorted(set(layers) - set(masks))
    unknown = sorted(set(masks) - set(layers))
    if missing or unknown:
        raise ValueError(
            f"Ticket masks do not match the model: missing {missing}, unknown {unknown}."
        )
    for name, mask in masks.items():
        layers[name].set_ticket_mask(mask)
