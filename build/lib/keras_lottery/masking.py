"""Mask rules: how a masked layer turns its mask logits `s` into the mask `m`.

Every masked layer holds the same variables (`w`, `s`, `beta`); its rule decides
how `m` is computed from them, whether `s` is trained and what penalty the layer
adds to the loss. Methods differ only in their rule and their round-end step
(`keras_lottery.methods`).

- ``continuous`` (CS): ``m = sigmoid(beta * s)``; penalty ``||m||_1``.
- ``stochastic`` (ISS, SS): ``m ~ Bernoulli(sigmoid(s))`` in training with a
  straight-through gradient, ``m = 1[s > 0]`` in inference; penalty
  ``||sigmoid(s)||_1``.
- ``fixed`` (IMP, ticket retraining): ``m = 1[s > 0]``; `s` is not trained; no penalty.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_lottery import native

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
        """Returns `(w * m, lambda * penalty)` for a training or inference step.

        `kernel` is `w` as the layer computes with it (cast to the compute
        dtype); the scaled penalty is None when the rule adds none. Rules may
        override this to fuse the mask, the product and the penalty.
        """
        mask, penalty = self.mask_and_penalty(layer, training)
        if penalty is not None:
            penalty = ops.multiply(layer.penalty_weight, penalty)
        return ops.multiply(kernel, ops.cast(mask, kernel.dtype)), penalty


def binary_mask(logits):
    """`b(s) = 1[s > 0]` as float32."""
    return ops.cast(ops.greater(logits, 0.0), "float32")


class ContinuousMask(MaskRule):
    """CS: the deterministic soft mask ``m = sigmoid(beta * s)``."""

    name = "continuous"
    uses_temperature = True
    #: Whether training steps on CPU may use the native kernel (`keras_lottery.native`).
    native_kernel = True

    def mask(self, layer, training=False):
        return ops.sigmoid(layer.temperature * layer.mask_logits)

    def mask_and_penalty(self, layer, training=False):
        mask = self.mask(layer, training)
        return mask, ops.sum(mask)

    def masked_kernel(self, layer, kernel, training=False):
        if keras.backend.backend() != "tensorflow":
            return super().masked_kernel(layer, kernel, training)
        inputs = [tf.convert_to_tensor(value) for value in (
            kernel, layer.mask_logits, layer.temperature, layer.penalty_weight)]
        if training and self.native_kernel and native.usable_for(inputs[0]):
            return native.continuous_mask(*inputs)
        return _fused_continuous(*inputs)


@tf.custom_gradient
def _fused_continuous(w, s, beta, lam):
    """CS forward `(w * m, lambda * sum(m))` with `m = sigmoid(beta * s)`, and its gradient.

    Autodiff would keep `beta * s`, broadcast the penalty's gradient to a full
    tensor and add it, and differentiate the product and the sigmoid apart;
    here the gradient is written out as five elementwise ops instead of eight
    (on CPU, `keras_lottery.native` does the same in one pass):
    `dw = g * m` and `ds = sigmoid'(g * w + lambda * g_penalty) * beta`.
    """
    mask = tf.sigmoid(beta * s)
    effective = w * tf.cast(mask, w.dtype)
    penalty = lam * tf.reduce_sum(mask)

    def gradient(g_effective, g_penalty):
        g_w = g_effective * tf.cast(mask, g_effective.dtype)
        g_mask = tf.cast(g_effective, "float32") * tf.cast(w, "float32")
        g_mask = (g_mask + lam * g_penalty) * beta
        g_s = tf.raw_ops.SigmoidGrad(y=mask, dy=g_mask)
        return g_w, g_s, None, None

    return (effective, penalty), gradient


def _philox_uniform(shape, seed_generator):
    """Uniform [0, 1) samples drawn with Philox, the next seed from `seed_generator`.

    `keras.random.uniform` leaves the algorithm to TensorFlow, which under XLA
    on CPU picks ThreeFry: about 60x slower on a LeNet-300-100 kernel. Philox
    is TensorFlow's default outside XLA, so eager and graph steps draw what
    they drew before.
    """
    if keras.backend.backend() != "tensorflow":
        return keras.random.uniform(shape, seed=seed_generator)
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
    return tf.random.stateless_uniform(shape, seed=seed, alg="philox")


class StochasticMask(MaskRule):
    """ISS / SS: ``m ~ Bernoulli(sigmoid(s))`` with a straight-through gradient.

    In training the forward pass uses the sample and the backward pass treats
    it as `sigmoid(s)` (`dm/ds = sigmoid'(s)`); in inference `m = 1[s > 0]`,
    the most likely mask.
    """

    name = "stochastic"
    samples = True

    def mask(self, layer, training=False):
        if not training:
            return binary_mask(layer.mask_logits)
        probability = ops.sigmoid(layer.mask_logits)
        uniform = _philox_uniform(ops.shape(probability), layer.seed_generator)
        sample = ops.cast(ops.less(uniform, probability), "float32")
        return probability + ops.stop_gradient(sample - probability)

    def mask_and_penalty(self, layer, training=False):
        return self.mask(layer, training), ops.sum(ops.sigmoid(layer.mask_logits))


class FixedMask(MaskRule):
    """A binary mask frozen to ``m = 1[s > 0]``: IMP and ticket retraining."""

    name = "fixed"
    trains_logits = False

    def mask(self, layer, training=False):
        return binary_mask(layer.mask_logits)


_RULES = {rule.name: rule for rule in (ContinuousMask, StochasticMask, FixedMask)}


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
