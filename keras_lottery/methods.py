"""Search methods: a mask rule plus what happens at the end of a round.

- `ContinuousSparsification` (CS, Algorithm 3): continuous rule; at round end
  `s <- min(beta_T * s_T, s0)` and `beta <- beta_0`. Ticket: `b(s_T)`.
- `IterativeStochasticSparsification` (ISS, Algorithm 2): stochastic rule; at
  round end every `s` that fell below `s0` is removed for good
  (`s <- -inf`). Ticket: `b(s_T)`.
- `IterativeMagnitudePruning` (IMP, Algorithm 1): fixed rule; at round end the
  smallest-magnitude surviving weights are removed, per layer or globally.
  Ticket: the mask after pruning.

`RoundManager` calls `method.round_end(layers)`; rewinding and optimizer resets
are the same for every method and live there.
"""

import math

import numpy as np

from keras_lottery.masking import REMOVED_LOGIT


class Method:
    """Base class: name, mask rule and round-end step of a search method."""

    name = None
    mask_rule = None
    #: Whether beta is annealed during a round (TemperatureCallback).
    anneals_temperature = False
    #: Whether the ticket is read after `round_end` (IMP) rather than before it.
    ticket_after_round_end = False

    def round_end(self, layers):
        raise NotImplementedError


def cs_mask_reset(layer, initial_temperature):
    """The CS round-end step: `s <- min(beta_T * s_T, s0)`, then `beta <- beta_0`.

    `beta_T` is the layer's temperature at the end of the round. (The authors'
    released code resets `beta` first and so applies `min(s_T, s0)`; this
    follows the paper's Algorithm 3.)
    """
    final_temperature = layer.temperature.numpy()
    logits = layer.mask_logits.numpy()
    layer.mask_logits.assign(np.minimum(final_temperature * logits, layer.mask_init))
    layer.temperature.assign(initial_temperature)


class ContinuousSparsification(Method):
    """CS: `m = sigmoid(beta * s)`; round end `s <- min(beta_T s_T, s0)`, `beta <- beta_0`."""

    name = "cs"
    mask_rule = "continuous"
    anneals_temperature = True

    def __init__(self, initial_temperature=1.0):
        self.initial_temperature = float(initial_temperature)

    def round_end(self, layers):
        for layer in layers:
            cs_mask_reset(layer, self.initial_temperature)


class IterativeStochasticSparsification(Method):
    """ISS: `m ~ Bernoulli(sigmoid(s))`; round end removes every `s_T < s0` for good."""

    name = "iss"
    mask_rule = "stochastic"

    def round_end(self, layers):
        for layer in layers:
            logits = layer.mask_logits.numpy()
            layer.mask_logits.assign(
                np.where(logits < layer.mask_init, REMOVED_LOGIT, logits).astype("float32"))


def _check_fraction(name, value):
    if not (isinstance(value, (int, float)) and 0 < value < 1 and math.isfinite(value)):
        raise ValueError(f"{name} must be a fraction in (0, 1), got {value!r}.")
    return float(value)


def _remove(layer, flat_indices):
    logits = layer.mask_logits.numpy().reshape(-1)
    logits[flat_indices] = REMOVED_LOGIT
    layer.mask_logits.assign(logits.reshape(layer.mask_logits.shape))


def _survivors(layer):
    """Flat indices of the surviving weights of `layer` and their magnitudes `|w|`."""
    kept = np.flatnonzero(layer.mask_logits.numpy().reshape(-1) > 0)
    magnitudes = np.abs(layer.unmasked_kernel.numpy().reshape(-1)[kept])
    return kept, magnitudes


def prune_layerwise(layers, fractions):
    """Removes `round(f * surviving)` smallest-|w| surviving weights of each layer.

    `fractions` maps layer name to its fraction `f`; layers not named keep all
    their weights. Ties are broken by position, so the result is deterministic.
    """
    for layer in layers:
        fraction = fractions.get(layer.name)
        if not fraction:
            continue
        kept, magnitudes = _survivors(layer)
        count = int(round(fraction * kept.size))
        order = np.argsort(magnitudes, kind="stable")
        _remove(layer, kept[order[:count]])


def prune_global(layers, fraction):
    """Removes `round(f * surviving)` smallest-|w| surviving weights ranked over all layers."""
    survivors = [_survivors(layer) for layer in layers]
    magnitudes = np.concatenate([m for _, m in survivors]) if survivors else np.zeros(0)
    owner = np.concatenate([np.full(len(k), i) for i, (k, _) in enumerate(survivors)])
    position = np.concatenate([k for k, _ in survivors])
    count = int(round(fraction * magnitudes.size))
    removed = np.argsort(magnitudes, kind="stable")[:count]
    for index, layer in enumerate(layers):
        chosen = removed[owner[removed] == index]
        if chosen.size:
            _remove(layer, position[chosen])


class IterativeMagnitudePruning(Method):
    """IMP: fixed binary masks; at round end prune the smallest surviving weights.

    Args:
        fraction: share of the surviving weights removed per round (paper: 0.2).
        scope: `"layerwise"` (each layer loses its own fraction) or `"global"`
            (one magnitude threshold over all masked layers).
        layer_fractions: `{layer name: fraction}` overriding `fraction` per layer
            in layerwise pruning (e.g. 0.15 for convolutions, 0.1 for the output).
    """

    name = "imp"
    mask_rule = "fixed"
    ticket_after_round_end = True

    def __init__(self, fraction=0.2, scope="layerwise", layer_fractions=None):
        self.fraction = _check_fraction("prune fraction", fraction)
        if scope not in ("layerwise", "global"):
            raise ValueError(f"prune scope must be 'layerwise' or 'global', got {scope!r}.")
        self.scope = scope
        self.layer_fractions = {
            name: _check_fraction(f"prune fraction of {name}", value)
            for name, value in (layer_fractions or {}).items()}

    def round_end(self, layers):
        if self.scope == "global":
            prune_global(layers, self.fraction)
        else:
            fractions = {layer.name: self.layer_fractions.get(layer.name, self.fraction)
                         for layer in layers}
            prune_layerwise(layers, fractions)


METHODS = {
    "cs": ContinuousSparsification,
    "iss": IterativeStochasticSparsification,
    "imp": IterativeMagnitudePruning,
}


def available_methods():
    return sorted(METHODS)
