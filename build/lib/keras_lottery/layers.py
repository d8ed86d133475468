"""Masked layers: `CSDense`, `CSConv2D`, `CSConv1D` and `CSDepthwiseConv2D`.

Each masked layer holds
- `_kernel`: the weight `w` (exposed as `unmasked_kernel`),
- `bias` (never masked),
- `mask_logits`: the mask logits `s`, same shape as `w`, initialised to `s0`
  (`mask_init`); trainable under the continuous rule,
- `temperature`: the scalar `beta`, a non-trainable variable; each training
  call multiplies it by `temperature_rate`, which `TemperatureCallback` sets,
- `penalty_weight`: `lambda` as a non-trainable variable (initialised to
  `mask_penalty`), which callbacks may change between steps. It is the one
  `lambda` the layer uses: `mask_penalty` is only its starting value.

The forward pass uses the effective kernel `w * m`, where the layer's mask rule
gives `m` (CS: `m = sigmoid(beta * s)`), and the layer adds
`lambda * ||m||_1` (`mask_penalty`) to the model's losses. As in Keras's own
`Dense`, `layer.kernel` is the effective kernel the layer computes with.
"""

import keras
from keras import ops

from keras_lottery import compat
from keras_lottery.masked_layer import MaskedLayer  # noqa: F401  (part of this module's API)


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSDense(MaskedLayer, keras.layers.Dense):
    """`keras.layers.Dense` whose kernel is masked: `y = x @ (w * m) + b`.

    Takes every argument of `Dense`, plus
        mask_init: `s0`, the initial value of the mask logits `s`.
        mask_penalty: `lambda`, the weight of `||m||_1` in the loss.
        mask_rule: how `m` is computed from `s`: `"continuous"` (CS,
            `sigmoid(beta*s)`), `"stochastic"` (ISS, `Bernoulli(sigmoid(s))`)
            or `"fixed"` (`1[s > 0]`, not trained).
        mask_seed: seed of the mask samples under the stochastic rule.
        mask_scale: `c`, a constant the mask is multiplied by, soft and binary
            (`y = x @ (c * w * m) + b`, penalty `lambda * ||c * m||_1`). The
            official CS code uses `c = 1 / sigmoid(s0)` (`official_mask_scale`),
            so that the network starts at its own weights; 1 (default) for none.
    """

    _plain_class = keras.layers.Dense
    #: What IMP's layerwise rates call this layer (`--prune_fraction_dense`).
    kind = "dense"

    def __init__(self, units, mask_init=0.0, mask_penalty=0.0, mask_rule="continuous",
                 mask_seed=None, mask_scale=1.0, **kwargs):
        self._init_mask(mask_init, mask_penalty, mask_rule, mask_seed, mask_scale, kwargs)
        super().__init__(units, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_mask()

    def _forward(self, inputs, kernel):
        outputs = ops.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self._mask_config()}


class _MaskedConv(MaskedLayer):
    """Forward pass shared by the masked `Conv1D` / `Conv2D` (causal padding included)."""

    kind = "conv"

    def __init__(self, filters, kernel_size, mask_init=0.0, mask_penalty=0.0,
                 mask_rule="continuous", mask_seed=None, mask_scale=1.0, **kwargs):
        self._init_mask(mask_init, mask_penalty, mask_rule, mask_seed, mask_scale, kwargs)
        super().__init__(filters, kernel_size, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_mask()

    def _forward(self, inputs, kernel):
        padding = self.padding
        if padding == "causal":
            inputs = ops.pad(inputs, self._compute_causal_padding())
            padding = "valid"
        outputs = ops.conv(inputs, kernel, strides=list(self.strides), padding=padding,
                           dilation_rate=self.dilation_rate, data_format=self.data_format)
        return self._add_bias_and_activate(outputs, self.filters)

    def get_config(self):
        return {**super().get_config(), **self._mask_config()}


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSConv2D(_MaskedConv, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel is masked: `y = conv(x, w * m) + b`.

    Takes every argument of `Conv2D`, plus `mask_init` (`s0`), `mask_penalty`
    (`lambda`), `mask_rule`, `mask_seed` and `mask_scale`, as `CSDense`.
    """

    _plain_class = keras.layers.Conv2D


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSConv1D(_MaskedConv, keras.layers.Conv1D):
    """`keras.layers.Conv1D` whose kernel is masked (causal padding supported).

    Takes every argument of `Conv1D`, plus the mask arguments of `CSDense`.
    """

    _plain_class = keras.layers.Conv1D


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSDepthwiseConv2D(MaskedLayer, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` whose depthwise kernel is masked.

    Takes every argument of `DepthwiseConv2D`, plus the mask arguments of `CSDense`.
    """

    _plain_class = keras.layers.DepthwiseConv2D
    kind = "conv"

    def __init__(self, kernel_size, mask_init=0.0, mask_penalty=0.0, mask_rule="continuous",
                 mask_seed=None, mask_scale=1.0, **kwargs):
        self._init_mask(mask_init, mask_penalty, mask_rule, mask_seed, mask_scale, kwargs)
        super().__init__(kernel_size, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_mask()

    def _forward(self, inputs, kernel):
        outputs = ops.depthwise_conv(inputs, kernel, strides=self.strides, padding=self.padding,
                                     dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        channels = self.depth_multiplier * self._get_input_channel(inputs.shape)
        return self._add_bias_and_activate(outputs, channels)

    def get_config(self):
        return {**super().get_config(), **self._mask_config()}


def masked_layers(model):
    """All masked layers of `model` (or `model` itself), nested models and sublayers included,
    in depth-first order."""
    return [layer for layer in compat.flatten_layers(model, include_self=True)
            if isinstance(layer, MaskedLayer)]
