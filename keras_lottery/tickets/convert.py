"""`sparsify` a plain Keras model into a masked one, and `strip` a masked model back.

- `sparsify(model)` returns a copy of a Sequential or functional model whose
  `Dense`, `Conv1D`, `Conv2D` and `DepthwiseConv2D` layers are masked layers
  holding the same weights (`s = s0`, `beta = 1`).
- `strip(model)` returns a plain Keras model whose kernels are
  `w * b(s)`: the ticket folded into the weights, with no mask variables and
  plain-Keras speed. For binary masks (fixed or stochastic rule, or a CS model
  whose `sigmoid(beta * s)` has saturated) its outputs equal the masked
  model's inference outputs bit for bit.
"""

import keras

from keras_lottery import compat, methods
from keras_lottery.layers import CSConv1D, CSConv2D, CSDense, CSDepthwiseConv2D, MaskedLayer

#: Plain Keras layer class -> its masked counterpart.
MASKED_CLASSES = {
    keras.layers.Dense: CSDense,
    keras.layers.Conv1D: CSConv1D,
    keras.layers.Conv2D: CSConv2D,
    keras.layers.DepthwiseConv2D: CSDepthwiseConv2D,
}


def _check_graph_model(model, who):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who} expects a keras.Model, got {type(model).__name__}.")
    if not (isinstance(model, keras.Sequential) or compat.is_functional(model)):
        raise TypeError(
            f"{who} handles Sequential and functional models; {type(model).__name__} is "
            "subclassed. Build its layers with keras_lottery.layers (CSDense, CSConv2D, ...) "
            "instead, or wrap them in a functional model.")
    if not model.built:
        raise ValueError(f"{who}: build the model first (give it an Input or call it once).")


def _copy_weights(source, target):
    """Copies the weights of `source` into the masked or plain layer `target`."""
    source_kernel = source.unmasked_kernel if isinstance(source, MaskedLayer) else None
    if isinstance(target, MaskedLayer) and not isinstance(source, MaskedLayer):
        values = source.get_weights()
        target.unmasked_kernel.assign(values[0])
        if len(values) > 1:
            target.bias.assign(values[1])
    elif source_kernel is not None and not isinstance(target, MaskedLayer):
        kernel = source_kernel.numpy() * (
            source.ticket_mask() * source.mask_scale).astype(source_kernel.dtype)
        target.set_weights([kernel] + ([_stripped_bias(source)] if source.bias is not None else []))
    else:
        target.set_weights(source.get_weights())


def _stripped_bias(layer):
    """The bias of a masked layer's ticket: with unit masks, removed units' biases are 0."""
    bias = layer.bias.numpy()
    if layer.granularity.gates_bias:
        gate = (layer.mask_logits.numpy() > 0).reshape(-1) * layer.mask_scale
        bias = bias * gate.astype(bias.dtype)
    return bias


def _clone(model, make_layer):
    originals = {}

    def clone_layer(layer):
        new_layer = make_layer(layer)
        originals[id(new_layer)] = layer
        return new_layer

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for layer in compat.flatten_layers(clone):
        source = originals.get(id(layer))
        if source is not None and source.weights:
            _copy_weights(source, layer)
    return clone


def sparsify(model, method="cs", mask_init=None, mask_penalty=0.0, exclude=(),
             mask_scaling=False, mask_granularity="weight"):
    """Returns a copy of `model` with its maskable layers replaced by masked layers.

    Args:
        model: a built Sequential or functional Keras model.
        method: `"cs"` (continuous masks), `"iss"` (stochastic) or `"imp"`
            (fixed binary masks starting dense).
        mask_init: `s0` (default: 0.0 for CS, 1.0 for ISS and IMP, all kept).
        mask_penalty: `lambda` (ignored by IMP).
        exclude: names of layers to leave plain.
        mask_granularity: `"weight"`, `"unit"` (whole neurons and filters, which `shrink`
            removes) or `"block"` (1x4 blocks of inputs, Dense only; TFLite keeps them sparse).
        mask_scaling: CS only: scale the mask by `1/sigmoid(s0)` (the official CS
            code's `mask_scale`), so that the copy's outputs at the start equal
            `model`'s: a trained model stays trained. Without it, CS's start
            `sigmoid(s0)` multiplies every kernel (by 1/2 at s0 = 0).

    The copy holds the same weights; `s = s0` and `beta = 1` in every masked layer.
    """
    _check_graph_model(model, "sparsify")
    method = methods.get(method)()
    names = {layer.name for layer in compat.flatten_layers(model)}
    unknown = sorted(set(exclude) - names)
    if unknown:
        raise ValueError(f"exclude names layers {unknown} that the model does not have.")
    mask_kwargs = method.layer_arguments(mask_init, mask_penalty, mask_scaling=mask_scaling,
                                         mask_granularity=mask_granularity)

    def make_layer(layer):
        masked_class = MASKED_CLASSES.get(type(layer))
        if masked_class is None or layer.name in exclude:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        config.pop("lora_rank", None)
        config.pop("lora_alpha", None)
        return masked_class.from_config({**config, **mask_kwargs})

    return _clone(model, make_layer)


def strip(model):
    """Returns a plain Keras copy of `model` with every kernel set to `c * w * b(s)`.

    The result has no mask variables and no custom layers, and is not compiled
    (compile it as you like): saved, it loads with `keras.saving.load_model` in
    any process, without keras_lottery, and runs at plain-Keras speed.
    """
    _check_graph_model(model, "strip")

    def make_layer(layer):
        if isinstance(layer, MaskedLayer):
            config = {k: v for k, v in layer.get_config().items()
                      if k not in MaskedLayer.MASK_ARGUMENTS}
            return layer.plain_class.from_config(config)
        return layer.__class__.from_config(layer.get_config())

    clone = _clone(model, make_layer)
    # Keras's clone_model compiles the clone like the original (with our optimizer); a
    # model rebuilt from the clone's config is plain and uncompiled.
    plain = type(clone).from_config(clone.get_config())
    plain.set_weights(clone.get_weights())
    return plain
