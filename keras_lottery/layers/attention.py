"""Attention heads as mask groups: which projections of a `MultiHeadAttention` (Keras's, or a
keras-hub subclass) carry a head's mask under unit masks.

With `mask_granularity="unit"` an attention layer's unit is a head: its output projection
(`_output_dense`, kernel `(heads, value_dim, outputs)`) is masked with `head` groups, one
logit `s_h` per head, and its query, key and value projections stay plain: the head's output
reaches the layer's output only through its slice of the output kernel, so `m_h` gates the
whole head, and a removed head's query, key, value and output slices leave the network
together (`shrink`). The penalty prices a head by all four slices (`costs.head_costs`).
"""

import keras

from keras_lottery import compat

#: A head mask's granularity; the projections a head mask covers are left plain.
HEAD = "head"


def projections(attention):
    """`(query, key, value, output)` projection layers of a `MultiHeadAttention`."""
    return (attention._query_dense, attention._key_dense, attention._value_dense,
            attention._output_dense)


def attention_layers(model):
    """The `MultiHeadAttention` layers (subclasses included) of `model`, nested ones too."""
    return [layer for layer in compat.flatten_layers(model, include_self=True)
            if isinstance(layer, keras.layers.MultiHeadAttention)]


def head_owner(model):
    """`{id(output projection): its attention layer}` over `model`'s attention layers."""
    return {id(attention._output_dense): attention for attention in attention_layers(model)}


def granularity_of_projections(model, mask_granularity):
    """`{id(projection): granularity or None}` for the projections of `model`'s attention
    layers under `mask_granularity`: with `"unit"`, the output projection takes `"head"` and
    the query, key and value projections None (left plain); with any other, empty (every
    projection takes `mask_granularity`)."""
    if mask_granularity != "unit":
        return {}
    found = {}
    for attention in attention_layers(model):
        query, key, value, output = projections(attention)
        found.update({id(query): None, id(key): None, id(value): None, id(output): HEAD})
    return found
