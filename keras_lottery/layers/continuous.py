"""The ``continuous`` mask rule of CS, the masked layers' default:
``m = sigmoid(beta * s)``, penalty ``lambda * ||m||_1`` (`ContinuousMask`).

At weight granularity on TensorFlow it computes `w * m` and the penalty in one fused op
(`_fused_continuous`), and in CPU training steps with the native kernel
(`keras_lottery.layers.native`). `beta` is read from the layer's annealing clock
(`keras_lottery.layers.annealing`). The rest of CS (the schedule of `beta`, the round-end
reset, the method's settings) is in `keras_lottery.methods.cs`.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_lottery.layers import native
from keras_lottery.layers.mask_rules import MaskRule, register_rule


@register_rule
class ContinuousMask(MaskRule):
    """CS: the deterministic soft mask ``m = sigmoid(beta * s)``."""

    name = "continuous"
    uses_temperature = True
    #: Whether training steps on CPU may use the native kernel (`keras_lottery.layers.native`).
    native_kernel = True

    def mask(self, layer, training=False):
        return ops.sigmoid(layer.current_temperature() * layer.mask_logits)

    def mask_and_penalty(self, layer, training=False):
        mask = self.mask(layer, training)
        return mask, ops.sum(mask)

    def masked_kernel(self, layer, kernel, training=False):
        # Groups of weights (unit, block): the mask is small; the generic product is cheap.
        if keras.backend.backend() != "tensorflow" or layer.mask_granularity != "weight":
            return super().masked_kernel(layer, kernel, training)
        inputs = [tf.convert_to_tensor(value) for value in (
            kernel, layer.mask_logits, layer.current_temperature(), layer.penalty_weight)]
        if training and self.native_kernel and native.usable_for(inputs[0]):
            return tuple(native.continuous_mask(*inputs)) + (None,)
        return tuple(_fused_continuous(*inputs)) + (None,)


@tf.custom_gradient
def _fused_continuous(w, s, beta, lam):
    """CS forward `(w * m, lambda * sum(m))` with `m = sigmoid(beta * s)`, and its gradient.

    Autodiff would keep `beta * s`, broadcast the penalty's gradient to a full
    tensor and add it, and differentiate the product and the sigmoid apart;
    here the gradient is written out as five elementwise ops instead of eight
    (on CPU, `keras_lottery.methods.native` does the same in one pass):
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
