"""Mask rules: how a masked layer turns its mask logits `s` into the mask `m`.

Every masked layer holds the same variables (`w`, `s`, `beta`); the rule decides
how `m` is computed from them, whether `s` is trained and what penalty the layer
adds to the loss. Methods differ only in their rule and their round-end step.

- ``continuous`` (Continuous Sparsification): ``m = sigmoid(beta * s)``,
  penalty ``sum(sigmoid(beta * s))``.
- ``fixed`` (ticket retraining, IMP): ``m = 1[s > 0]``, `s` not trained, no penalty.
"""

from keras import ops


class MaskRule:
    """Maps mask logits `s` (and temperature `beta`) to the mask `m`."""

    name = None
    #: Whether the optimizer trains `s` under this rule.
    trains_logits = True

    def mask(self, logits, temperature, training=False):
        """Returns the mask `m` (float32, same shape as `s`)."""
        raise NotImplementedError

    def mask_and_penalty(self, logits, temperature, training=False):
        """Returns `(m, penalty)`; the penalty is unscaled (no `lambda`) or None.

        Computing both together lets a rule reuse `m` for the penalty, so each
        mask is computed once per step.
        """
        return self.mask(logits, temperature, training), None


class ContinuousMask(MaskRule):
    """CS: the deterministic soft mask ``m = sigmoid(beta * s)``."""

    name = "continuous"

    def mask(self, logits, temperature, training=False):
        return ops.sigmoid(temperature * logits)

    def mask_and_penalty(self, logits, temperature, training=False):
        mask = self.mask(logits, temperature, training)
        return mask, ops.sum(mask)


class FixedMask(MaskRule):
    """A binary mask frozen to ``m = 1[s > 0]``: tickets and IMP."""

    name = "fixed"
    trains_logits = False

    def mask(self, logits, temperature, training=False):
        return ops.cast(ops.greater(logits, 0.0), "float32")


_RULES = {rule.name: rule for rule in (ContinuousMask, FixedMask)}


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


def register_rule(rule_class):
    """Registers a `MaskRule` subclass under its `name` (usable as a decorator)."""
    if not (isinstance(rule_class, type) and issubclass(rule_class, MaskRule)):
        raise TypeError(f"register_rule expects a MaskRule subclass, got {rule_class!r}.")
    _RULES[rule_class.name] = rule_class
    return rule_class


