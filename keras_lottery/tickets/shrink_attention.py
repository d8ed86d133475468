"""`shrink`'s rule for attention: a `MultiHeadAttention` keeps the heads its ticket keeps.

A head is gone when its slice of the output projection is all 0 (a `head` ticket removed it),
or when its value slice and value bias are (it then adds 0 to every output). Its query, key,
value and output slices leave the layer together and the layer is rebuilt with the kept
number of heads: blocks may keep different numbers. The layer's inputs and outputs keep every
channel (they are the residual stream). A ticket that keeps no head of a layer leaves one
*silent* head (Keras's `MultiHeadAttention` needs one): its query, key, value and output slices
are zeros, so the layer outputs its output bias alone, as the stripped ticket does, and costs
one head.
"""

import keras
import numpy as np

from keras_lottery.layers import attention as attention_heads
from keras_lottery.tickets.shrink_channels import arrays_of
from keras_lottery.tickets.shrink_error import ShrinkError


def is_attention(layer):
    return isinstance(layer, keras.layers.MultiHeadAttention)


def dead_heads(arrays):
    """Bool per head: the heads that the `[kernel, bias...]` of an attention layer's query,
    key, value and output projections (`arrays`) have removed."""
    _, _, value, output = arrays
    out_kernel = output[0]
    dead = ~np.any(out_kernel.reshape(out_kernel.shape[0], -1) != 0, axis=1)
    value_kernel = np.moveaxis(value[0], -2, 0)  # (heads, inputs..., value_dim)
    silent = ~np.any(value_kernel.reshape(value_kernel.shape[0], -1) != 0, axis=1)
    if len(value) > 1:
        silent &= ~np.any(value[1].reshape(value[1].shape[0], -1) != 0, axis=1)
    return dead | silent


def attention_plan(layer, inputs_full, kernels=None):
    """`(weights, dead)`: the flat weights of `layer` with its kept heads only (in
    `MultiHeadAttention`'s order: query, key, value, output; kernels then biases; one silent
    head when none is kept) and a bool per head, gone. A one-line ShrinkError if its inputs
    lost channels."""
    if not inputs_full:
        raise ShrinkError(f"shrink: cannot take channels out of the inputs of attention layer "
                          f"{layer.name!r}; leave the layers that feed it without unit masks.")
    projections = [arrays_of(part, kernels, key=f"{layer.name}/{part.name}")
                   for part in attention_heads.projections(layer)]
    dead = dead_heads(projections)
    silent = dead.all()
    kept = np.array([0]) if silent else np.flatnonzero(~dead)
    weights = []
    for index, arrays in enumerate(projections):
        if index < 3:  # query, key, value: kernel (inputs..., heads, dim), bias (heads, dim)
            slices = [np.take(arrays[0], kept, axis=-2)] + [
                np.take(b, kept, axis=0) for b in arrays[1:]]
        else:  # output: kernel (heads, value_dim, outputs), bias (outputs)
            slices = [arrays[0][kept]] + arrays[1:]
            if silent:
                slices[0] = np.zeros_like(slices[0])
        if silent and index < 3:
            slices = [np.zeros_like(a) for a in slices]
        weights += slices
    return weights, dead
