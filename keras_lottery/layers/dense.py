"""`CSDense`: `keras.layers.Dense` with a masked kernel."""

import keras
from keras import ops

from keras_lottery.layers.masked_layer import MaskedLayer, bias_and_activation


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSDense(MaskedLayer, keras.layers.Dense):
    """`keras.layers.Dense` whose kernel is masked: `y = x @ (w * m) + b`.

    Takes every argument of `Dense`, plus the mask arguments of `MaskedLayer`:
    `mask_init` (`s0`), `mask_penalty` (`lambda`), `mask_rule`, `mask_seed`, `mask_scale`,
    `mask_granularity` (`weight`, `unit`: a neuron, or `block`: 1x4 of its inputs).
    """

    plain_class = keras.layers.Dense
    #: What IMP's layerwise rates call this layer (`--prune_fraction_dense`).
    kind = "dense"
    takes_blocks = True  # 1x4 blocks of inputs, TFLite's sparse fully connected layout

    def _forward(self, inputs, kernel, gate):
        return bias_and_activation(self, ops.matmul(inputs, kernel), self.units, gate)
