"""Pruning between rounds, shared by IMP and random pruning (`PruningMethod`).

Both keep binary masks (`fixed` rule, `s` not trained, every weight kept at the start),
and after each round remove `round(f * surviving)` of the surviving weights with the
lowest score: of each layer (`layerwise`) or ranked over all masked layers (`global`).
IMP scores a weight by `|w|`, random pruning by a random number. Ties are broken by
position, so the result is deterministic. The ticket is the mask after pruning.

With `mask_granularity="unit"` the last masked layer's units are the network's outputs (the
classes) unless another layer reads them (`gpt_tiny` leaves its output layer unmasked, so its
last masked layer is a feed-forward layer), and pruning then leaves them all: only hidden units
are removed.
"""

import numpy as np

from keras_lottery import compat
from keras_lottery.layers import REMOVED_LOGIT
from keras_lottery.layers.mask_rules import kept
from keras_lottery.methods.base import Method, Setting, fraction

PRUNE_SCOPES = ("layerwise", "global")
PRUNE_FRACTION = Setting("prune_fraction", 0.2, "IMP and random pruning: share of the surviving "
                         "weights pruned per round.", check=fraction())
PRUNE_SCOPE = Setting("prune_scope", "layerwise", "IMP and random pruning: layerwise (each layer "
                      "its own rate) or global (one ranking).", choices=PRUNE_SCOPES)
REUSE_NEXT_ROUND = Setting(
    "reuse_next_round", True, "IMP and random pruning with rewinding (--rewind_epoch = "
    "--ticket_epoch, --ticket_epochs = --epochs): round r+1 trains ticket r from the same "
    "weights as long, so its test accuracy is ticket r's and only the last ticket is "
    "retrained; --noreuse_next_round retrains every ticket.")


def _check_fraction(name, value):
    if fraction()(value):
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}.")
    return float(value)


def survivors(layer):
    """Flat indices of the weights of `layer` that its mask still keeps (`s > 0`)."""
    return np.flatnonzero(kept(layer.mask_logits.numpy()).reshape(-1))


def remove(layer, flat_indices):
    """Removes the weights at `flat_indices` of `layer` for good (`s <- REMOVED_LOGIT`)."""
    logits = layer.mask_logits.numpy().reshape(-1)
    logits[flat_indices] = REMOVED_LOGIT
    layer.mask_logits.assign(logits.reshape(layer.mask_logits.shape))


def prune_layerwise(layers, fractions, scores):
    """Removes `round(f * surviving)` lowest-scored survivors of each layer.

    `fractions[i]` is layer i's fraction `f` (0 or None: nothing removed); `scores(i,
    layer, kept)` gives the scores of its survivors `kept`.
    """
    for index, layer in enumerate(layers):
        if not fractions[index]:
            continue
        kept = survivors(layer)
        count = int(round(fractions[index] * kept.size))
        order = np.argsort(scores(index, layer, kept), kind="stable")
        remove(layer, kept[order[:count]])


def prune_global(layers, fraction_, scores):
    """Removes `round(f * surviving)` lowest-scored survivors ranked over all layers."""
    kept = [survivors(layer) for layer in layers]
    values = [scores(index, layer, k) for index, (layer, k) in enumerate(zip(layers, kept))]
    if not kept:
        return
    owner = np.concatenate([np.full(len(k), i) for i, k in enumerate(kept)])
    position = np.concatenate(kept)
    all_scores = np.concatenate(values)
    removed = np.argsort(all_scores, kind="stable")[:int(round(fraction_ * all_scores.size))]
    for index, layer in enumerate(layers):
        chosen = removed[owner[removed] == index]
        if chosen.size:
            remove(layer, position[chosen])


class PruningMethod(Method):
    """A method that prunes between rounds: fixed masks, no penalty, a score per weight.

    Subclasses implement `scores(layers)`: a function `(index, layer, kept) -> scores`,
    lowest pruned first. `fraction_of(index, layer, layers)` gives a layer's layerwise rate.

    Args:
        fraction: share of the surviving weights removed per round (paper: 0.2).
        scope: `"layerwise"` (each layer loses its own fraction) or `"global"`.
    """

    mask_rule = "fixed"
    uses_penalty = False
    ticket_after_round_end = True
    learns_supermask = False
    takes_target_remaining = False
    settings = (PRUNE_FRACTION, PRUNE_SCOPE, REUSE_NEXT_ROUND)

    def __init__(self, fraction=0.2, scope="layerwise"):
        self.fraction = _check_fraction("prune fraction", fraction)
        if scope not in PRUNE_SCOPES:
            raise ValueError(f"prune scope must be 'layerwise' or 'global', got {scope!r}.")
        self.scope = scope

    def layer_arguments(self, mask_init=None, mask_penalty=0.0, mask_scaling=False,
                        mask_granularity="weight"):
        # Pruning starts dense (s = 1 everywhere), never trains s and scales nothing.
        return super().layer_arguments(1.0, 0.0, mask_scaling, mask_granularity)

    def scores(self, layers):
        raise NotImplementedError

    def fraction_of(self, index, layer, layers):
        """The layerwise rate of `layers[index]`."""
        del index, layer, layers
        return self.fraction

    def round_end(self, layers):
        scores = self.scores(layers)
        if (layers and layers[-1].granularity.name == "unit"
                and not compat.read_by_other_layers(layers[-1])):
            layers = layers[:-1]  # the output layer's units are the classes: never pruned
        if self.scope == "global":
            prune_global(layers, self.fraction, scores)
        else:
            prune_layerwise(layers, [self.fraction_of(i, layer, layers)
                                     for i, layer in enumerate(layers)], scores)

    def reuses_next_round(self, config):
        """Whether ticket r's retraining is round r+1's training: with rewinding, when round
        r+1 trains ticket r from the same weights for as many epochs as a retraining would."""
        return (config.reuse_next_round and not config.supermask
                and config.rewind_epoch >= 0 and config.rewind_epoch == config.ticket_epoch
                and config.ticket_epochs == config.epochs and not config.keep_optimizer_state)
