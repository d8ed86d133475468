"""Search methods: a mask rule plus what happens at the end of a round.

- `ContinuousSparsification` (CS, Algorithm 3): continuous rule; at round end
  `s <- min(beta_T * s_T, s0)` and `beta <- beta_0`. Ticket: `b(s_T)`.
- `IterativeStochasticSparsification` (ISS, Algorithm 2): stochastic rule; at
  round end every `s` that fell below `s0` is removed for good
  (`s <- -inf`). Ticket: `b(s_T)`.
- `IterativeMagnitudePruning` (IMP, Algorithm 1): fixed rule; at round end the
  smallest-magnitude surviving weights are removed, per layer or globally.
  Ticket: the mask after pruning.

`end_round` (`keras_lottery.rounds`) calls `method.round_end(layers)`; reading
the ticket, rewinding and optimizer resets are the same for every method and
live there. Each `Method` also owns its layer arguments (`layer_arguments`: rule,
`s0`, `lambda`) and its callbacks during a round (`round_callbacks`).
"""

import math

import numpy as np

from keras_lottery.masked_layer import official_mask_scale
from keras_lottery.masking import REMOVED_LOGIT
from keras_lottery.temperature import TemperatureCallback

#: CS round-end resets: the paper's `min(beta_T s_T, s0)` or the released code's `min(s_T, s0)`.
CS_RESETS = ("paper", "official")


class Method:
    """Every method-specific choice of a search: mask rule, layer arguments, round-end step.

    The lottery runner, `RoundManager`, `sparsify` and custom loops ask the
    method instead of comparing names: `layer_arguments` (rule, `s0`, `lambda`),
    `round_callbacks` (what runs during a round), `round_end` (the reset after
    it) and `ticket_after_round_end` (whether the ticket is read after it).
    """

    name = None
    mask_rule = None
    #: `s0` when the user gives none (`sparsify`): every weight kept at the start.
    default_mask_init = 1.0
    #: Whether beta is annealed during a round (TemperatureCallback).
    anneals_temperature = False
    #: Whether the loss holds `lambda * ||m||_1` (`mask_penalty`).
    uses_penalty = True
    #: Whether the ticket is read after `round_end` (IMP) rather than before it.
    ticket_after_round_end = False

    def layer_arguments(self, mask_init=None, mask_penalty=0.0, mask_scaling=False):
        """The masked layers' mask arguments (`mask_rule`, `mask_init` = s0, `mask_penalty`,
        and `mask_scale`: `1/sigmoid(s0)` with `mask_scaling`, the official CS code's, else 1)."""
        mask_init = self.default_mask_init if mask_init is None else float(mask_init)
        return {"mask_rule": self.mask_rule, "mask_init": mask_init,
                "mask_penalty": float(mask_penalty) if self.uses_penalty else 0.0,
                "mask_scale": official_mask_scale(mask_init) if mask_scaling else 1.0}

    def round_callbacks(self):
        """Keras callbacks that run during every round of this method (besides the runner's)."""
        return []

    def round_end(self, layers):
        raise NotImplementedError


def cs_mask_reset(layer, initial_temperature, official=False):
    """The CS round-end step: `s <- min(beta_T * s_T, s0)`, then `beta <- beta_0`.

    `beta_T` is the layer's temperature at the end of the round (the paper's
    Algorithm 3). With `official=True`, the authors' released code: it resets
    `beta` first and so applies `s <- min(s_T, s0)`.
    """
    final_temperature = 1.0 if official else layer.temperature.numpy()
    logits = layer.mask_logits.numpy()
    reset = np.minimum(final_temperature * logits, layer.mask_init)
    # Removed logits stay at REMOVED_LOGIT instead of growing by beta_T every round (to -inf).
    layer.mask_logits.assign(np.maximum(reset, REMOVED_LOGIT).astype("float32"))
    layer.temperature.assign(initial_temperature)


class ContinuousSparsification(Method):
    """CS: `m = sigmoid(beta * s)`; round end `s <- min(beta_T s_T, s0)`, `beta <- beta_0`.

    Args:
        initial_temperature: `beta_0`, the temperature every round starts at.
        reset: `"paper"` (`s <- min(beta_T s_T, s0)`) or `"official"` (`min(s_T, s0)`).
        final_temperature: `beta_T`; when given, `round_callbacks` anneals `beta`
            to it over each round (`TemperatureCallback`).
        per_epoch: step `beta` once per epoch instead of every step.
    """

    name = "cs"
    mask_rule = "continuous"
    default_mask_init = 0.0
    anneals_temperature = True

    def __init__(self, initial_temperature=1.0, final_temperature=None, per_epoch=False,
                 reset="paper", official_temperature=False):
        if reset not in CS_RESETS:
            raise ValueError(f"reset must be one of {list(CS_RESETS)}, got {reset!r}.")
        self.initial_temperature = float(initial_temperature)
        self.final_temperature = final_temperature
        self.per_epoch = per_epoch or official_temperature
        self.official_temperature = official_temperature
        self.reset = reset

    def round_callbacks(self):
        if self.final_temperature is None:
            return []
        return [TemperatureCallback(self.final_temperature, self.initial_temperature,
                                    per_epoch=self.per_epoch,
                                    official=self.official_temperature)]

    def round_end(self, layers):
        for layer in layers:
            cs_mask_reset(layer, self.initial_temperature, official=self.reset == "official")


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

    uses_penalty = False

    def __init__(self, fraction=0.2, scope="layerwise", layer_fractions=None,
                 conv_fraction=None, dense_fraction=None, output_fraction=None):
        self.fraction = _check_fraction("prune fraction", fraction)
        if scope not in ("layerwise", "global"):
            raise ValueError(f"prune scope must be 'layerwise' or 'global', got {scope!r}.")
        self.scope = scope
        self.layer_fractions = {
            name: _check_fraction(f"prune fraction of {name}", value)
            for name, value in (layer_fractions or {}).items()}
        self.kind_fractions = {
            kind: _check_fraction(f"prune fraction of {kind} layers", value)
            for kind, value in (("conv", conv_fraction), ("dense", dense_fraction),
                                ("output", output_fraction)) if value}

    def layer_arguments(self, mask_init=None, mask_penalty=0.0, mask_scaling=False):
        # IMP starts dense (s = 1 everywhere), never trains s and scales nothing.
        return super().layer_arguments(1.0, 0.0)

    def fraction_of(self, layer, is_output=False):
        """The layerwise rate of `layer`: by name, then the output layer's, then its kind's
        (`conv` for every convolution, Conv1D and depthwise included), then `fraction`."""
        if layer.name in self.layer_fractions:
            return self.layer_fractions[layer.name]
        if is_output and "output" in self.kind_fractions:
            return self.kind_fractions["output"]
        return self.kind_fractions.get(layer.kind, self.fraction)

    def round_end(self, layers):
        if self.scope == "global":
            prune_global(layers, self.fraction)
        else:
            prune_layerwise(layers, {layer.name: self.fraction_of(layer, i == len(layers) - 1)
                                     for i, layer in enumerate(layers)})


METHODS = {
    "cs": ContinuousSparsification,
    "iss": IterativeStochasticSparsification,
    "imp": IterativeMagnitudePruning,
}


def available_methods():
    return sorted(METHODS)


def get(name):
    """The `Method` class called `name`; a one-line ValueError naming the choices otherwise."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; expected one of {available_methods()}.")
    return METHODS[name]


def from_config(config):
    """The `Method` a `SearchConfig` describes (its temperature schedule and pruning rates)."""
    if config.method == "cs":
        return ContinuousSparsification(config.initial_temperature, config.final_temperature,
                                        per_epoch=config.temperature_per_epoch,
                                        reset=config.reset,
                                        official_temperature=config.official_temperature)
    if config.method == "iss":
        return IterativeStochasticSparsification()
    return IterativeMagnitudePruning(
        config.prune_fraction, config.prune_scope,
        conv_fraction=config.prune_fraction_conv or None,
        dense_fraction=config.prune_fraction_dense or None,
        output_fraction=config.prune_fraction_output or None)
