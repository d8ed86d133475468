"""Ticket models: a searched model with every mask fixed to a ticket (`build_ticket`).

A ticket is a mask per masked layer (`{layer name: bool array}`) plus the weights it is
retrained from (`w_0` or `w_k`). `build_ticket` clones the searched model with every mask
fixed (`mask_rule="fixed"`), so the removed weights stay zero in effect while the kept
ones train.
"""

import keras

from keras_lottery.layers import MaskedLayer
from keras_lottery.tickets import snapshots
from keras_lottery.tickets.masks import apply_masks


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
        weights: a `tickets.snapshots.snapshot` to start from (`w_0`, `w_k`);
            None keeps the clone's fresh initialization.
    """
    ticket = keras.models.clone_model(model, clone_function=_with_fixed_masks)
    if weights is not None:
        snapshots.restore(ticket, weights)
    apply_masks(ticket, masks)
    return ticket
