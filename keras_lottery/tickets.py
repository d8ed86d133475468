"""Tickets: binary masks `b(s)` of a model, their `.npz` files, and ticket models.

A ticket is a mask per masked layer (`{layer name: bool array}`) plus the
weights it is retrained from (`w_0` or `w_k`). `build_ticket` turns a searched
model into a ticket model: the same architecture with every mask fixed
(`mask_rule="fixed"`), so the removed weights stay zero in effect while the
kept ones train.
"""

import keras
import numpy as np

from keras_lottery import io_utils
from keras_lottery import weights as weights_lib
from keras_lottery.layers import MaskedLayer, masked_layers


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
    with np.load(path, allow_pickle=False) as data:
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


def _with_fixed_masks(layer):
    config = layer.get_config()
    if isinstance(layer, MaskedLayer):
        config["mask_rule"] = "fixed"
        config["mask_penalty"] = 0.0
    return layer.__class__.from_config(config)


def build_ticket(model, masks, weights=None):
    """Returns the ticket of `model`: a clone whose masks are fixed to `masks`.

    Args:
        model: a Sequential or functional model built from masked layers.
        masks: `{layer name: bool array}` (from `extract_masks` or `load_masks`).
        weights: a `keras_lottery.weights.snapshot` to start from (`w_0`, `w_k`);
            None keeps the clone's fresh initialization.
    """
    ticket = keras.models.clone_model(model, clone_function=_with_fixed_masks)
    if weights is not None:
        weights_lib.restore(ticket, weights)
    apply_masks(ticket, masks)
    return ticket
