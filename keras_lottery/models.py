"""Models of the paper built from masked layers, behind a registry by name.

Every builder takes the input shape, the number of classes, `unmasked` (names
of layers built as plain Keras layers, without `s`) and the mask arguments
(`mask_init` = `s0`, `mask_penalty` = `lambda`, `mask_rule`), and returns an
uncompiled `keras.Model` that outputs logits. Text models also take the
`vocabulary_size` of their token ids.
"""

import keras

from keras_lottery import compat
from keras_lottery.layers import CSConv2D, CSDense, attention, mask_in_place, maskable
from keras_lottery.tickets.unit_plan import idle_unit_layers

_BUILDERS = {}


def register(name):
    """Decorator that registers a model builder under `name`."""

    def decorate(builder):
        _BUILDERS[name] = builder
        return builder

    return decorate


def available_models():
    return sorted(_BUILDERS)


def build(name, input_shape, num_classes, unmasked=(), vocabulary_size=None, options=None,
          **mask_kwargs):
    """Builds the registered model `name`; raises a one-line ValueError if unknown.

    Layers named in `unmasked` are plain `Dense`/`Conv2D` layers (no `s`, never
    pruned); naming a layer the model does not have is an error. `options`: settings of
    one model (`width_multiplier` of `mobilenet_v2`).
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}; expected one of {available_models()}.")
    factory = _LayerFactory(set(unmasked), mask_kwargs, vocabulary_size, options)
    model = _BUILDERS[name](tuple(input_shape), int(num_classes), factory)
    factory.mask_attention()
    unknown = sorted(set(unmasked) - factory.names)
    if unknown:
        raise ValueError(
            f"unmasked layers {unknown} are not in model {name!r}; its maskable layers are "
            f"{sorted(factory.names)}.")
    return model


class _LayerFactory:
    """Makes masked layers, or plain Keras layers for the names in `unmasked`."""

    def __init__(self, unmasked, mask_kwargs, vocabulary_size=None, options=None):
        self.unmasked = unmasked
        self.options = dict(options or {})
        self.mask_kwargs = mask_kwargs
        self.vocabulary_size = vocabulary_size
        self.names = set()
        self.attention_layers = []

    def attention(self, num_heads, key_dim, name, masked=True, **kwargs):
        """A `MultiHeadAttention` whose query, key, value and output projections are masked
        in place once the model is built (`mask_attention`)."""
        self.names.add(name)
        layer = keras.layers.MultiHeadAttention(num_heads, key_dim, name=name, **kwargs)
        if masked and name not in self.unmasked:
            self.attention_layers.append(layer)
        return layer

    def mask_attention(self):
        """Masks the attention layers' projections; with unit masks, the output projection's
        heads only (`layers.attention`)."""
        granularity = self.mask_kwargs.get("mask_granularity", "weight")
        for layer_ in self.attention_layers:
            by_projection = attention.granularity_of_projections(layer_, granularity)
            for key, layer in compat.keyed_layers(layer_):
                chosen = by_projection.get(id(layer), granularity)
                if maskable(layer) and chosen is not None:
                    mask_in_place(layer, f"{layer_.name}/{key}",
                                  **{**self.mask_kwargs, "mask_granularity": chosen})

    def mask_model(self, model):
        """Masks the maskable layers of a built `model` in place (a keras.applications
        network), but those in `unmasked` and, with unit masks, those whose units `shrink`
        could not remove (`tickets.unit_plan`: they would only cost accuracy)."""
        idle = (idle_unit_layers(model)
                if self.mask_kwargs.get("mask_granularity") == "unit" else {})
        for key, layer in compat.keyed_layers(model):
            if maskable(layer):
                self.names.add(layer.name)
                if layer.name not in self.unmasked and layer not in idle:
                    mask_in_place(layer, key, **self.mask_kwargs)
        return model

    def dense(self, units, name, masked=True, **kwargs):
        self.names.add(name)
        if name in self.unmasked or not masked:
            return keras.layers.Dense(units, name=name, **kwargs)
        return CSDense(units, name=name, **kwargs, **self.mask_kwargs)

    def conv2d(self, filters, kernel_size, name, masked=True, **kwargs):
        self.names.add(name)
        if name in self.unmasked or not masked:
            return keras.layers.Conv2D(filters, kernel_size, name=name, **kwargs)
        return CSConv2D(filters, kernel_size, name=name, **kwargs, **self.mask_kwargs)


@register("lenet300_100")
def lenet300_100(input_shape, num_classes, layers):
    """LeNet-300-100: fully connected 784-300-100-10 with ReLU (fc1, fc2, output)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = layers.dense(300, activation="relu", name="fc1")(x)
    x = layers.dense(100, activation="relu", name="fc2")(x)
    outputs = layers.dense(num_classes, name="output", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="lenet300_100")


def _conv_net(name, filters, input_shape, num_classes, layers):
    inputs = keras.Input(input_shape)
    x = inputs
    for block, width in enumerate(filters, start=1):
        for index in (1, 2):
            x = layers.conv2d(width, 3, padding="same", activation="relu",
                              name=f"conv{block}_{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten()(x)
    x = layers.dense(256, activation="relu", name="fc1")(x)
    x = layers.dense(256, activation="relu", name="fc2")(x)
    outputs = layers.dense(num_classes, name="output", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


@register("conv2")
def conv2(input_shape, num_classes, layers):
    """Conv-2: [conv64, conv64, pool], FC 256-256-classes (Frankle & Carbin)."""
    return _conv_net("conv2", (64,), input_shape, num_classes, layers)


@register("conv4")
def conv4(input_shape, num_classes, layers):
    """Conv-4: 2 x [conv, conv, pool] with 64/128 channels, FC 256-256-classes."""
    return _conv_net("conv4", (64, 128), input_shape, num_classes, layers)


@register("conv6")
def conv6(input_shape, num_classes, layers):
    """Conv-6: 3 x [conv, conv, pool] with 64/128/256 channels, FC 256-256-classes."""
    return _conv_net("conv6", (64, 128, 256), input_shape, num_classes, layers)


def _conv_bn_relu(layers, x, filters, name, strides=1, relu=True):
    x = layers.conv2d(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


@register("resnet18")
def resnet18(input_shape, num_classes, layers):
    """The paper's CIFAR "ResNet-18", as its authors built it.

    A 3x3 stem conv, then 3 stages of 16/32/64 channels with 3 basic blocks
    each (conv-BN-ReLU-conv-BN plus shortcut, then ReLU); the first block of
    stages 2 and 3 has stride 2 and a 1x1 stride-2 projection shortcut (with
    BN). Global average pooling and a linear output. The 3x3 convolutions
    are masked; the 1x1 shortcuts and the output layer are never masked
    (Sec. 4.2).
    """
    inputs = keras.Input(input_shape)
    x = _conv_bn_relu(layers, inputs, 16, "stem")
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, 4):
            prefix = f"stage{stage}_block{block}"
            strides = 2 if stage > 1 and block == 1 else 1
            shortcut = x
            y = _conv_bn_relu(layers, x, filters, f"{prefix}_conv1", strides=strides)
            y = _conv_bn_relu(layers, y, filters, f"{prefix}_conv2", relu=False)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.conv2d(filters, 1, strides=strides, use_bias=False,
                                         kernel_initializer="he_normal",
                                         name=f"{prefix}_shortcut", masked=False)(shortcut)
                shortcut = keras.layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
            x = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
            x = keras.layers.ReLU(name=f"{prefix}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.dense(num_classes, name="output", masked=False, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="resnet18")


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


@register("vgg16")
def vgg16(input_shape, num_classes, layers):
    """VGG-16 for CIFAR as in the lottery-ticket literature: 13 masked 3x3 conv-BN-ReLU
    layers with 2x2 max-pooling between blocks, global average pooling and a linear output."""
    inputs = keras.Input(input_shape)
    x, index = inputs, 0
    for item in _VGG16:
        if item == "M":
            x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
            continue
        index += 1
        x = _conv_bn_relu(layers, x, item, f"conv{index}")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.dense(num_classes, name="output", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="vgg16")


@register("transformer_tiny")
def transformer_tiny(input_shape, num_classes, layers):
    """A 2-block transformer encoder for token ids: width 64, 4 heads of 16, feed-forward 128.

    Embedding (0 pads and is masked out), then per block `block<b>_attention` (its 4
    projections masked) and `block<b>_ff1`/`block<b>_ff2`, each with a residual add and
    post-layer-normalization; mean over the tokens, a linear `output`. No position embedding:
    a verse's genre is read from its words, and the model stays plain Keras once stripped.
    """
    if not layers.vocabulary_size:
        raise ValueError("transformer_tiny reads token ids: it needs a text data set "
                         "(--dataset=kjv_genres).")
    tokens = keras.Input(input_shape, dtype="int32")
    x = keras.layers.Embedding(layers.vocabulary_size, 64, mask_zero=True,
                               name="embedding")(tokens)
    for block in range(2):
        attended = layers.attention(4, 16, name=f"block{block}_attention")(x, x)
        x = keras.layers.LayerNormalization(name=f"block{block}_norm1")(
            keras.layers.Add(name=f"block{block}_add1")([x, attended]))
        hidden = layers.dense(128, activation="relu", name=f"block{block}_ff1")(x)
        hidden = layers.dense(64, name=f"block{block}_ff2")(hidden)
        x = keras.layers.LayerNormalization(name=f"block{block}_norm2")(
            keras.layers.Add(name=f"block{block}_add2")([x, hidden]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = layers.dense(num_classes, name="output", dtype="float32")(x)
    return keras.Model(tokens, outputs, name="transformer_tiny")


@register("gpt_tiny")
def gpt_tiny(input_shape, num_classes, layers):
    """A causal character-level language model: 4 pre-normalized blocks of width 128, 4 heads
    of 32 and a feed-forward layer of 512 (GELU), learned positions, logits for the next
    character at every position (`--dataset=kjv_chars`).

    Token `embedding` plus `positions` (keras-hub's `PositionEmbedding`), per block
    `block<b>_norm1`, `block<b>_attention` (causal), `block<b>_add1`, `block<b>_norm2`,
    `block<b>_ff1`, `block<b>_ff2`, `block<b>_add2`; `final_norm`, `output`. Masked: the
    attention projections and both feed-forward layers (with unit masks: the heads and
    `ff1`'s units, which take `ff2`'s input rows along; `ff2` writes the residual stream,
    whose channels stay, so it is left plain). The embeddings and `output` are never
    masked. Our own functional model rather than keras-hub's `GPT2Backbone`: `shrink` walks
    a functional graph of Keras layers, and a backbone's blocks hide theirs inside.
    """
    if not layers.vocabulary_size or tuple(input_shape) != (input_shape[0],):
        raise ValueError("gpt_tiny reads a window of character ids: it needs a character "
                         "data set (--dataset=kjv_chars).")
    import keras_hub

    width, heads, hidden = 128, 4, 512
    units = layers.mask_kwargs.get("mask_granularity") == "unit"
    tokens = keras.Input(input_shape, dtype="int32")
    x = keras.layers.Embedding(layers.vocabulary_size, width, name="embedding")(tokens)
    x = keras.layers.Add(name="add_positions")(
        [x, keras_hub.layers.PositionEmbedding(input_shape[0], name="positions")(x)])
    for block in range(4):
        normed = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{block}_norm1")(x)
        attended = layers.attention(heads, width // heads, name=f"block{block}_attention")(
            normed, normed, use_causal_mask=True)
        x = keras.layers.Add(name=f"block{block}_add1")([x, attended])
        normed = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{block}_norm2")(x)
        hidden_ = layers.dense(hidden, activation="gelu", name=f"block{block}_ff1")(normed)
        hidden_ = layers.dense(width, name=f"block{block}_ff2", masked=not units)(hidden_)
        x = keras.layers.Add(name=f"block{block}_add2")([x, hidden_])
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    outputs = layers.dense(num_classes, name="output", masked=False, dtype="float32")(x)
    return keras.Model(tokens, outputs, name="gpt_tiny")


@register("mobilenet_v2")
def mobilenet_v2(input_shape, num_classes, layers):
    """`keras.applications.MobileNetV2` without pretrained weights, of width
    `width_multiplier` (alpha, default 0.35), logits out, its BatchNormalization momentum
    0.9 (Keras's 0.999 suits long ImageNet runs; a few epochs need statistics that follow the
    weights). Its convolutions are masked in place (with unit masks: the depthwise channels,
    which take their expand unit and project input along, and the convolutions whose units
    `shrink` can remove)."""
    model = keras.applications.MobileNetV2(
        input_shape=input_shape, alpha=float(layers.options.get("width_multiplier", 0.35)),
        weights=None, classes=num_classes, classifier_activation=None)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return layers.mask_model(model)
