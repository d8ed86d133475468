"""`CSEinsumDense`: `keras.layers.EinsumDense` with a masked kernel (attention's query, key,
value and output projections, and any einsum layer).

Granularities: ``weight`` always. ``unit`` when the kernel's output axes (its letters that
reach the output) are its last axes, as in every projection of `MultiHeadAttention`; a unit
is one output channel (for the query `"abc,cde->abde"`: one (head, head_dim) entry), and its
mask gates its bias, which must then span exactly those axes. ``block`` when the kernel is a
matrix `"...i,ij->...j"` (TFLite's fully connected layout, as for `CSDense`). ``head`` when
the kernel's first axis is summed over and is not the last input axis alone, as in attention's
output projection `"abcd,cde->abe"` (kernel `(heads, value_dim, outputs)`): a group is a head.
"""

import keras
from keras import ops

from keras_lottery.layers.masked_layer import MaskedLayer, gated_bias


def kernel_axes(equation):
    """`(contracted, output)`: which kernel axes are summed over and which reach the output."""
    inputs, output = equation.split("->")
    kernel = inputs.split(",")[1]
    return ([i for i, letter in enumerate(kernel) if letter not in output],
            [i for i, letter in enumerate(kernel) if letter in output])


@keras.saving.register_keras_serializable(package="keras_lottery")
class CSEinsumDense(MaskedLayer, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` whose kernel is masked: `y = einsum(x, w * m) + b`.

    Takes every argument of `EinsumDense` plus the mask arguments of `MaskedLayer`.
    """

    plain_class = keras.layers.EinsumDense
    kind = "dense"

    @property
    def unit_axes(self):
        """How many trailing kernel axes index a unit (a ValueError if units are not trailing,
        or if the bias does not span them, for unit masks)."""
        contracted, output = kernel_axes(self.equation)
        rank = len(contracted) + len(output)
        if output != list(range(rank - len(output), rank)):
            raise ValueError(f"{self.name}: mask_granularity='unit' needs the kernel's output "
                             f"axes last; equation {self.equation!r} mixes them. Use 'weight'.")
        if self.bias is not None and len(self.bias.shape) != len(output):
            raise ValueError(f"{self.name}: mask_granularity='unit' needs a bias over all "
                             f"output axes of the kernel, got bias_axes={self.bias_axes!r}. "
                             "Use 'weight'.")
        return len(output)

    @property
    def takes_blocks(self):  # a matrix kernel "i,ij": 1x4 blocks of inputs, as for Dense
        return kernel_axes(self.equation) == ([0], [1])

    @property
    def takes_heads(self):  # attention's output projection: kernel (heads, value_dim, out)
        contracted, _ = kernel_axes(self.equation)
        return len(contracted) >= 2 and contracted[:2] == [0, 1]

    def _forward(self, inputs, kernel, gate):
        outputs = ops.einsum(self.equation, inputs, kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, gated_bias(self, gate))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
