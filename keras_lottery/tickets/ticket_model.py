"""Ticket models: a searched model with every mask fixed to a ticket (`build_ticket`).

A ticket is a mask per masked layer (`{layer key: bool array}`) plus the weights it is
retrained from (`w_0` or `w_k`). `build_ticket` copies the searched model (its class, its
layers masked in place included) with every mask fixed (`mask_rule="fixed"`), so the
removed weights stay zero in effect while the kept ones train.
"""

from keras_lottery.tickets import snapshots
from keras_lottery.tickets.convert import copy_model
from keras_lottery.tickets.masks import apply_masks


def build_ticket(model, masks, weights=None):
    """Returns the ticket of `model`: a clone whose masks are fixed to `masks`.

    Args:
        model: a model with masked layers.
        masks: `{layer key: bool array}` (from `extract_masks` or `load_masks`).
        weights: a `tickets.snapshots.snapshot` to start from (`w_0`, `w_k`);
            None keeps the copy's fresh initialization.
    """
    ticket = copy_model(model, "build_ticket", {"mask_rule": "fixed", "mask_penalty": 0.0},
                        copy_weights=False)
    if weights is not None:
        snapshots.restore(ticket, weights)
    apply_masks(ticket, masks)
    return ticket
