"""Mask granularity: how many weights one mask logit `s` decides.

- ``weight``: one logit per weight (unstructured: the paper's CS); `s` has the kernel's shape.
- ``unit``: one logit per output unit (a Dense neuron, a conv filter, a depthwise output
  channel); `s` has shape `(1, ..., 1, units)` and broadcasts over the unit's weights, and
  the unit's mask gates its bias too, so a removed unit outputs `act(0)`. A ticket then
  removes whole units, which `shrink` takes out of the network.
- ``block``: one logit per 1x4 block of consecutive inputs of one output unit, the layout in
  which TFLite keeps fully connected weights sparse (Dense only, input size divisible by 4);
  `s` has shape `(inputs / 4, units)`.
- ``head``: one logit per attention head, on a `MultiHeadAttention`'s output projection
  (kernel `(heads, value_dim, outputs)`); `s` has shape `(heads, 1, 1)`. The head's output
  reaches the layer's output only through its slice of that kernel, so `m_h` gates the whole
  head (Michel et al., 2019's head mask): a removed head's query, key, value and output
  slices all leave the network (`shrink`). `sparsify(mask_granularity="unit")` gives
  attention layers this granularity and leaves their query, key and value projections plain.

The penalty counts the weights a group holds (`group_size`), so `lambda` keeps its
per-weight meaning and a flagfile's value stays comparable across granularities.
"""

import numpy as np
from keras import ops

#: Inputs per block: TFLite's fully connected kernels stay sparse in 1x4 blocks (float32).
BLOCK = 4


class Granularity:
    """Maps a kernel's shape to its groups: the shape of `s`, and masks between the two."""

    name = None
    #: Whether a group's mask also gates the bias of its unit (a removed unit outputs act(0)).
    gates_bias = False

    def group_shape(self, layer, kernel_shape):
        raise NotImplementedError

    def expand(self, mask, kernel_shape):
        """A group-shaped mask as a tensor that multiplies the kernel (broadcasting allowed)."""
        return mask

    def expand_numpy(self, mask, kernel_shape):
        """A group-shaped numpy mask at the kernel's shape."""
        return np.broadcast_to(mask, kernel_shape)

    def group_values(self, values, group_shape, reduce):
        """`reduce(values, axis=..., keepdims=True)` of a kernel-shaped numpy array over each
        group's weights (by default: over the axes where a group spans the whole kernel)."""
        values = np.asarray(values)
        axes = tuple(i for i, (n, k) in enumerate(zip(group_shape, values.shape)) if n != k)
        return reduce(values, axis=axes, keepdims=True) if axes else values

    def to_groups(self, mask, layer):
        """A kernel- or group-shaped bool mask as a group mask; a ValueError if a group of a
        kernel-shaped mask is neither all kept nor all removed."""
        mask = np.asarray(mask, bool)
        kernel_shape, shape = tuple(layer._kernel.shape), tuple(layer.mask_logits.shape)
        if mask.shape == shape:
            return mask
        if mask.shape != kernel_shape:
            raise ValueError(f"Layer {layer.name!r}: ticket mask has shape {mask.shape}, "
                             f"expected {shape} or the kernel's {kernel_shape}.")
        kept = self.group_values(mask, shape, np.all)
        if (kept != self.group_values(mask, shape, np.any)).any():
            raise ValueError(f"Layer {layer.name!r}: the ticket mask keeps part of a "
                             f"{self.name} group; mask_granularity={self.name!r} keeps or "
                             "removes whole groups.")
        return kept


class WeightGranularity(Granularity):
    name = "weight"

    def group_shape(self, layer, kernel_shape):
        return tuple(kernel_shape)


class UnitGranularity(Granularity):
    name = "unit"
    gates_bias = True

    def group_shape(self, layer, kernel_shape):
        axes = layer.unit_axes
        return (1,) * (len(kernel_shape) - axes) + tuple(kernel_shape[-axes:])



class BlockGranularity(Granularity):
    name = "block"

    def group_shape(self, layer, kernel_shape):
        if not layer.takes_blocks:
            raise ValueError(f"{layer.name}: mask_granularity='block' (1x4 blocks of inputs, "
                             f"TFLite's fully connected layout) is for Dense layers; "
                             f"{type(layer).__name__} takes 'weight' or 'unit'.")
        inputs, units = kernel_shape
        if inputs % BLOCK:
            raise ValueError(f"{layer.name}: mask_granularity='block' needs an input size "
                             f"divisible by {BLOCK}, got {inputs}; use 'weight' or 'unit'.")
        return (inputs // BLOCK, units)

    def expand(self, mask, kernel_shape):
        return ops.repeat(mask, BLOCK, axis=0)

    def expand_numpy(self, mask, kernel_shape):
        return np.repeat(mask, BLOCK, axis=0)

    def group_values(self, values, group_shape, reduce):
        blocks, units = group_shape
        return reduce(np.reshape(values, (blocks, BLOCK, units)), axis=1)


class HeadGranularity(Granularity):
    name = "head"

    def group_shape(self, layer, kernel_shape):
        if not getattr(layer, "takes_heads", False):
            raise ValueError(f"{layer.name}: mask_granularity='head' is for the output "
                             "projection of attention (an EinsumDense whose kernel's first axis "
                             f"is the heads, summed over); {type(layer).__name__} takes "
                             "'weight' or 'unit'.")
        return (kernel_shape[0],) + (1,) * (len(kernel_shape) - 1)


GRANULARITIES = {g.name: g for g in (WeightGranularity, UnitGranularity, BlockGranularity,
                                     HeadGranularity)}
#: What a search asks for (`--mask_granularity`): `unit` gives attention layers `head` groups.
SEARCH_GRANULARITIES = ("weight", "unit", "block")


def get(name):
    """The `Granularity` called `name`; a one-line ValueError naming the choices otherwise."""
    if name not in GRANULARITIES:
        raise ValueError(f"Unknown mask_granularity {name!r}; expected one of "
                         f"{list(GRANULARITIES)}.")
    return GRANULARITIES[name]()
