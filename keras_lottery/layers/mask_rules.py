"""Mask rules: how a masked layer turns its mask logits `s` into the mask `m`.

Every masked layer holds the same variables (`w`, `s`, `beta`); its rule decides
how `m` is computed from them, whether `s` is trained and what penalty the layer
adds to the loss. This module holds the base class, the registry and the one rule
every method shares:

- ``fixed`` (IMP, random pruning, ticket retraining): ``m = 1[s > 0]``; `s` is not
  trained; no penalty.

The learning rules live with their methods and register here on import:
``continuous`` (CS, `keras_lottery.methods.cs`) and ``stochastic`` (ISS,
`keras_lottery.methods.iss`). `import keras_lottery` imports both.
"""

import numpy as np
from keras import ops

#: The ticket's rule, the one definition every part uses: a group is kept when its logit
#: is above this (`b(s) = 1[s > 0]`). A logit exactly at 0 is a tie, and a tie is dropped;
#: the soft mask `sigmoid(beta*s)` is 1/2 there at every `beta`, so no default `s0` is 0
#: (a logit that gets no gradient stays at `s0`, and saturates to the ticket's value).
TICKET_THRESHOLD = 0.0

#: Largest |beta_0 * s0| a search accepts: sigmoid'(10) is 4.5e-5 of its peak, and past ~17
#: it is exactly 0 in float32 (the mask would start saturated, with no gradient).
MAX_MASK_LOGIT = 10.0

#: Value of `s` for a weight removed for good (the paper's `s <- -inf`). It is
#: finite, so no arithmetic on `s` can give NaN, and low enough that
#: `sigmoid(beta * s)`, `sigmoid(s)` and their gradients are exactly 0 in float32.
REMOVED_LOGIT = -1e9


class MaskRule:
    """Maps a masked layer's mask logits `s` (and temperature `beta`) to its mask `m`."""

    name = None
    #: Whether the optimizer trains `s` under this rule.
    trains_logits = True
    #: Whether the rule samples (the layer then owns a `keras.random.SeedGenerator`).
    samples = False
    #: Whether `m` depends on the temperature `beta` (training steps then advance it).
    uses_temperature = False

    def mask(self, layer, training=False):
        """Returns the mask `m` (float32, same shape as `s`)."""
        raise NotImplementedError

    def mask_and_penalty(self, layer, training=False):
        """Returns `(m, penalty)`; the penalty is unscaled (no `lambda`) or None.

        Computing both together lets a rule reuse `m` for the penalty, so each
        mask is computed once per step.
        """
        return self.mask(layer, training), None

    def masked_kernel(self, layer, kernel, training=False):
        """Returns `(w * m, lambda * penalty, m)` for a training or inference step; `m` is
        computed per group (one value per logit) and expanded to the kernel
        (`layer.expand_mask`).

        `kernel` is `w` as the layer computes with it (cast to the compute
        dtype); the scaled penalty is None when the rule adds none. Rules may
        override this to fuse the mask, the product and the penalty; a fused rule
        returns `m` as None where nothing reads it (weight granularity gates no bias).
        """
        mask, penalty = self.mask_and_penalty(layer, training)
        if penalty is not None:  # lambda * (weights per group) * sum over groups
            penalty = ops.multiply(layer.penalty_weight * layer.group_size, penalty)
        kernel = ops.multiply(kernel, ops.cast(layer.expand_mask(mask), kernel.dtype))
        return kernel, penalty, mask


def binary_mask(logits):
    """`b(s) = 1[s > 0]` as float32 (a tensor; `kept` is its numpy twin)."""
    return ops.cast(ops.greater(logits, TICKET_THRESHOLD), "float32")


def kept(logits):
    """`b(s)`: which groups the ticket keeps (numpy bool, `s > 0`; a tie at 0 is dropped)."""
    return np.asarray(logits) > TICKET_THRESHOLD


def removed(logits):
    """Which groups are removed for good (`s` at `REMOVED_LOGIT`, by ISS, IMP or a reset):
    they stay out of the ticket whatever later steps do (numpy bool)."""
    return np.asarray(logits) <= REMOVED_LOGIT / 2


_RULES = {}


def register_rule(rule_class):
    """Registers a `MaskRule` subclass under its `name` (usable as a decorator)."""
    if not (isinstance(rule_class, type) and issubclass(rule_class, MaskRule)):
        raise TypeError(f"register_rule expects a MaskRule subclass, got {rule_class!r}.")
    _RULES[rule_class.name] = rule_class
    return rule_class


@register_rule
class FixedMask(MaskRule):
    """A binary mask frozen to ``m = 1[s > 0]``: IMP, random pruning and ticket retraining."""

    name = "fixed"
    trains_logits = False

    def mask(self, layer, training=False):
        return binary_mask(layer.mask_logits)


def available_rules():
    """Names accepted by `get_rule` (and by the layers' `mask_rule` argument)."""
    return sorted(_RULES)


def get_rule(name):
    """Returns a new `MaskRule` for `name`, or raises a one-line ValueError."""
    if isinstance(name, MaskRule):
        return name
    if name not in _RULES:
        raise ValueError(
            f"Unknown mask_rule {name!r}; expected one of {available_rules()}."
        )
    return _RULES[name]()
