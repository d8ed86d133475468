"""Models of the paper built from masked layers, behind a registry by name.

Every builder takes the input shape, the number of classes and the mask
arguments (`mask_init` = `s0`, `mask_penalty` = `lambda`, `mask_rule`) and
returns an uncompiled `keras.Model` that outputs logits.
"""

import keras

from keras_lottery.layers import CSConv2D, CSDense

_BUILDERS = {}


def register(name):
    """Decorator that registers a model builder under `name`."""

    def decorate(builder):
        _BUILDERS[name] = builder
        return builder

    return decorate


def available_models():
    return sorted(_BUILDERS)


def build(name, input_shape, num_classes, **mask_kwargs):
    """Builds the registered model `name`; raises a one-line ValueError if unknown."""
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}; expected one of {available_models()}.")
    return _BUILDERS[name](tuple(input_shape), int(num_classes), **mask_kwargs)


@register("lenet300_100")
def lenet300_100(input_shape, num_classes, **mask_kwargs):
    """LeNet-300-100: fully connected 784-300-100-10 with ReLU, every layer masked."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = CSDense(300, activation="relu", name="fc1", **mask_kwargs)(x)
    x = CSDense(100, activation="relu", name="fc2", **mask_kwargs)(x)
    outputs = CSDense(num_classes, name="output", **mask_kwargs)(x)
    return keras.Model(inputs, outputs, name="lenet300_100")


def _conv_net(name, filters, input_shape, num_classes, **mask_kwargs):
    inputs = keras.Input(input_shape)
    x = inputs
    for block, width in enumerate(filters, start=1):
        for index in (1, 2):
            x = CSConv2D(width, 3, padding="same", activation="relu",
                         name=f"conv{block}_{index}", **mask_kwargs)(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.Flatten()(x)
    x = CSDense(256, activation="relu", name="fc1", **mask_kwargs)(x)
    x = CSDense(256, activation="relu", name="fc2", **mask_kwargs)(x)
    outputs = CSDense(num_classes, name="output", **mask_kwargs)(x)
    return keras.Model(inputs, outputs, name=name)


@register("conv2")
def conv2(input_shape, num_classes, **mask_kwargs):
    """Conv-2: [conv64, conv64, pool], FC 256-256-classes (Frankle & Carbin)."""
    return _conv_net("conv2", (64,), input_shape, num_classes, **mask_kwargs)


@register("conv4")
def conv4(input_shape, num_classes, **mask_kwargs):
    """Conv-4: 2 x [conv, conv, pool] with 64/128 channels, FC 256-256-classes."""
    return _conv_net("conv4", (64, 128), input_shape, num_classes, **mask_kwargs)


@register("conv6")
def conv6(input_shape, num_classes, **mask_kwargs):
    """Conv-6: 3 x [conv, conv, pool] with 64/128/256 channels, FC 256-256-classes."""
    return _conv_net("conv6", (64, 128, 256), input_shape, num_classes, **mask_kwargs)
