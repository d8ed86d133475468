"""A keras-hub model as a plain functional graph whose transformer blocks are Keras layers.

keras-hub's `TransformerEncoder` (BERT) and `TransformerDecoder` (GPT-2) hide their attention
and feed-forward layers inside one layer, and its backbones set every block's `key_dim` to
`hidden_dim // num_heads`, so no keras-hub class holds a block with fewer heads of the same
width. `unroll(model)` rebuilds a keras-hub `Task` or `Backbone` (or any functional model that
holds them) as one `keras.Model` in which each block is the layers it calls, in its order:
layer norm, `MultiHeadAttention` (the padding mask as its `attention_mask`, the decoder's causal
mask by `use_causal_mask`), dropout, the residual `Add`, then the feed-forward pair of `Dense`
layers the same way (`normalize_first` as the block has it). Embeddings, the tied output
(`ReversibleEmbedding(reverse=True)`) and every other layer stay keras-hub's; nested backbones
are inlined. Copies of the weights, the same outputs (to float rounding); `shrink` then walks
that graph. Blocks with cross-attention are refused in one line.
"""

import keras
from keras import ops

from keras_lottery import compat
from keras_lottery.tickets.shrink_error import ShrinkError

#: keras-hub's block classes, by name (keras-hub is imported only by the models that use it).
_BLOCKS = ("TransformerEncoder", "TransformerDecoder")


def is_block(layer):
    return type(layer).__name__ in _BLOCKS and type(layer).__module__.startswith("keras_hub")


def needs_unrolling(model):
    """Whether `model` holds keras-hub blocks or nested functional models `shrink` cannot walk."""
    return compat.is_functional(model) and (
        "layers" not in model.get_config()
        or any(is_block(layer) for layer in compat.flatten_layers(model)))


def unroll(model, origins=None):
    """A `keras.Model` computing what `model` computes, its keras-hub blocks as Keras layers
    (see the module); the weights are copies. `origins`, a dict, receives `{name of a layer
    of the result: the layer of model it copies}`."""
    pairs = {}  # id(original) -> (original, copy)
    origins = {} if origins is None else origins

    def copy(layer, name=None, cls=None):
        if id(layer) not in pairs:
            config = layer.get_config()
            config["name"] = name or layer.name
            pairs[id(layer)] = (layer, (cls or type(layer)).from_config(config))
            origins[config["name"]] = layer
        return pairs[id(layer)][1]

    inputs = keras.tree.map_structure(
        lambda x: keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name), model.input)
    outputs = _through(model, inputs, copy)
    result = keras.Model(inputs, outputs, name=model.name)
    for original, clone in pairs.values():
        clone.set_weights(original.get_weights())
    return result


def _through(model, inputs, copy):
    """`model`'s graph run on the symbolic `inputs`, every layer replaced by `copy(layer)`."""

    def operation(op):
        if is_block(op):
            return lambda *args, **kwargs: _block(op, copy, *args, **kwargs)
        if compat.is_functional(op):
            return lambda *args, **kwargs: _through(op, args[0], copy)
        if isinstance(op, keras.layers.Layer):
            return copy(op)
        return op  # a stateless operation (a slice, a cast): the same one, on new tensors

    return compat.run_through_graph(model, inputs, operation)


def _block(block, copy, x, padding_mask=None, attention_mask=None, decoder_padding_mask=None,
           decoder_attention_mask=None, use_causal_mask=True, encoder_sequence=None, **_):
    """One keras-hub transformer block as Keras layers on the symbolic `x` (see the module)."""
    if encoder_sequence is not None or getattr(block, "_cross_attention_layer", None):
        raise ShrinkError(f"shrink: block {block.name!r} has cross-attention; only "
                          "self-attention blocks (BERT, GPT-2 style) can be unrolled.")
    decoder = type(block).__name__ == "TransformerDecoder"
    padding = decoder_padding_mask if decoder else padding_mask
    if padding is None and decoder:  # keras-hub's decoder reads Keras's mask as its padding
        padding = compat.keras_mask(x)
    custom = decoder_attention_mask if decoder else attention_mask
    mask = None if padding is None else ops.expand_dims(ops.cast(padding, "int32"), 1)
    if custom is not None:
        custom = ops.cast(custom, "int32")
        mask = custom if mask is None else ops.minimum(mask, custom)
    prefix = f"{block.name}_"

    def sub(layer, cls=None):
        return copy(layer, prefix + layer.name, cls)

    def residual_step(x, norm, body):
        residual = x
        if block.normalize_first:
            x = sub(norm)(x)
        x = keras.layers.Add(name=f"{prefix}{norm.name}_residual")([body(x), residual])
        return x if block.normalize_first else sub(norm)(x)

    attention = sub(block._self_attention_layer, keras.layers.MultiHeadAttention)

    def attend(h):
        if decoder and compat.keras_mask(h) is not None:
            # keras-hub's decoder attention masks keys only; a plain MultiHeadAttention would
            # also mask the padded queries it reads from Keras's mask: pass it no mask (h * 1)
            h = ops.multiply(h, 1.0)
        return sub(block._self_attention_dropout)(attention(
            h, h, attention_mask=mask, use_causal_mask=decoder and use_causal_mask))

    x = residual_step(x, block._self_attention_layer_norm, attend)
    return residual_step(x, block._feedforward_layer_norm, lambda h: sub(
        block._feedforward_dropout)(sub(block._feedforward_output_dense)(
            sub(block._feedforward_intermediate_dense)(h))))
