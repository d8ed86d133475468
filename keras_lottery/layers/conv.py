"""Masked convolutions: `CSConv1D`, `CSConv2D` and `CSDepthwiseConv2D`.

Each takes every argument of its Keras layer plus the mask arguments of
`MaskedLayer`; IMP's layerwise rates call all of them `conv` (`--prune_fraction_conv`).
"""

import keras
from keras import ops

from keras_lottery import compat
from keras_lottery.layers.masked_layer import MaskedLayer, bias_and_activation


class _MaskedConv(MaskedLayer):
    """Forward pass shared by the masked `Conv1D` / `Conv2D` (causal padding included)."""

    kind = "conv"

    def _forward(self, inputs, kernel, gate):
        padding = self.padding
        if padding == "causal":
            inputs = ops.pad(inputs, compat.causal_padding(self))
            padding = "valid"
        outputs = ops.conv(inputs, kernel, strides=list(self.strides), padding=padding,
                           dilation_rate=self.dilation_rate, data_format=self.data_format)
        return bias_and_activation(self, outputs, self.filters, gate)


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSConv2D(_MaskedConv, keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel is masked: `y = conv(x, w * m) + b`."""

    plain_class = keras.layers.Conv2D


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSConv1D(_MaskedConv, keras.layers.Conv1D):
    """`keras.layers.Conv1D` whose kernel is masked (causal padding supported)."""

    plain_class = keras.layers.Conv1D


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSDepthwiseConv2D(MaskedLayer, keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` whose depthwise kernel is masked."""

    plain_class = keras.layers.DepthwiseConv2D
    kind = "conv"
    unit_axes = 2  # an output channel is (input channel, multiplier)

    def _forward(self, inputs, kernel, gate):
        outputs = ops.depthwise_conv(inputs, kernel, strides=self.strides, padding=self.padding,
                                     dilation_rate=self.dilation_rate,
                                     data_format=self.data_format)
        channels = self.depth_multiplier * compat.input_channels(self, inputs.shape)
        return bias_and_activation(self, outputs, channels, gate)
