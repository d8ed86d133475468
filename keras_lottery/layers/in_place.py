"""Masking a built Keras layer in place: the layer object stays where it is (in a functional
graph, inside an attention layer, in a subclassed or keras-hub model), only its class becomes
the masked one and it gains `s`, `beta`, its rate and `lambda`.

Keras's own LoRA (`enable_lora`) and `quantize` change a built layer's kernel the same way:
the masked classes compute with `w * m` through the `kernel` property over `_kernel`.
"""

import keras

from keras_lottery import compat
from keras_lottery.layers import annealing
from keras_lottery.layers.conv import CSConv1D, CSConv2D, CSDepthwiseConv2D
from keras_lottery.layers.dense import CSDense
from keras_lottery.layers.einsum_dense import CSEinsumDense
from keras_lottery.layers.masked_layer import MaskedLayer, _add_mask_variables, set_mask_arguments

#: Plain Keras layer class -> its masked counterpart (exact classes: a subclass of Dense may
#: compute differently, so it is left alone).
MASKED_CLASSES = {
    keras.layers.Dense: CSDense,
    keras.layers.EinsumDense: CSEinsumDense,
    keras.layers.Conv1D: CSConv1D,
    keras.layers.Conv2D: CSConv2D,
    keras.layers.DepthwiseConv2D: CSDepthwiseConv2D,
}


def maskable(layer):
    """Whether `layer` is a plain layer that `mask_in_place` turns into a masked one."""
    return type(layer) in MASKED_CLASSES


def check_maskable(layer, key=None, **mask_arguments):
    """A one-line ValueError naming the layer if it cannot be masked in place with
    `mask_arguments` (no masked class, not built, LoRA, quantized, a bad argument or
    granularity). Changes nothing."""
    who = f"layer {key or layer.name!r} ({type(layer).__name__})"
    if not maskable(layer):
        raise ValueError(f"{who} has no masked counterpart; maskable: "
                         f"{sorted(c.__name__ for c in MASKED_CLASSES)}.")
    if not layer.built:
        raise ValueError(f"{who} is not built; build the model first (call it once).")
    if getattr(layer, "lora_enabled", False):
        raise ValueError(f"{who} has LoRA enabled; masking and LoRA both rewrite the kernel. "
                         "Merge or drop the LoRA weights first.")
    if getattr(layer, "quantization_mode", None) is not None:
        raise ValueError(f"{who} is quantized ({layer.quantization_mode}); mask the float "
                         "model, then quantize the stripped ticket.")
    kernel_variable = layer._kernel if hasattr(layer, "_kernel") else layer.kernel
    spread = _devices_outside_distribution(kernel_variable)
    if spread:
        raise ValueError(f"{who}: its weights are spread over {spread} devices by a "
                         "keras.distribution, and new mask variables would sit on one; mask "
                         "the model inside that distribution's scope() (keras-team/keras#18681).")
    kernel_shape = tuple(kernel_variable.shape)
    plain = type(layer)
    state = {name: vars(layer)[name] for name in _MASK_STATE if name in vars(layer)}
    try:  # the masked class's view of the layer, for its argument and granularity checks
        object.__setattr__(layer, "__class__", MASKED_CLASSES[plain])
        set_mask_arguments(layer, **mask_arguments)
        layer.granularity.group_shape(layer, kernel_shape)
    except ValueError as error:
        raise ValueError(f"{who}: {error}") from None
    finally:
        object.__setattr__(layer, "__class__", plain)
        for name in _MASK_STATE:
            vars(layer).pop(name, None)
        vars(layer).update(state)


def _devices_outside_distribution(variable):
    """On JAX, outside any `keras.distribution` scope: how many devices `variable` is spread
    over when more than one (a variable created now would sit on one device and a jitted
    step would refuse the mix); else 0."""
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is not None:
        return 0
    sharding = getattr(getattr(variable, "value", None), "sharding", None)
    devices = len(sharding.device_set) if sharding is not None else 1
    return devices if devices > 1 else 0


#: The attributes `set_mask_arguments` sets.
_MASK_STATE = ("mask_init", "mask_penalty", "mask_scale", "_mask_rule", "granularity",
               "mask_seed", "mask_granularity")


def mask_in_place(layer, key=None, **mask_arguments):
    """Turns the built plain `layer` into its masked class, keeping its weights `w` and bias:
    `s = s0`, `beta = 1`. `mask_arguments` are `MaskedLayer`'s (`mask_init`, ...); a bad one
    is a one-line ValueError and leaves the layer as it was."""
    check_maskable(layer, key, **mask_arguments)
    with compat.unlocked_tracking(layer):
        kernel = vars(layer).pop("kernel", None)  # DepthwiseConv2D keeps w as `kernel`
        layer.__class__ = MASKED_CLASSES[type(layer)]
        if kernel is not None:
            object.__setattr__(layer, "_kernel", kernel)
        set_mask_arguments(layer, **mask_arguments)
        _add_mask_variables(layer)
        compat.refresh_call_signature(layer)
    return layer


def mask_arguments_of(layer):
    """The mask arguments of a masked layer (what `mask_in_place` takes to redo it)."""
    return {name: getattr(layer, name) for name in MaskedLayer.MASK_ARGUMENTS}


def unmask_in_place(layer, kernel, bias=None):
    """Turns the masked `layer` back into its plain Keras class, with `kernel` (and `bias`)
    as its weights: the mask variables leave the layer (and the model's weights)."""
    with compat.unlocked_tracking(layer):
        for name in ("mask_logits", "temperature", "temperature_rate", "penalty_weight"):
            delattr(layer, name)  # Keras's Layer.__delattr__ untracks a variable
        compat.drop_seed_generator(layer, vars(layer).pop("seed_generator", None))
        layer.unmasked_kernel.assign(kernel)
        if bias is not None:
            layer.bias.assign(bias)
        for name in _MASK_STATE + ("group_size", annealing.CLOCK_ATTRIBUTE):
            vars(layer).pop(name, None)
        layer.__class__ = layer.plain_class
        if not hasattr(type(layer), "kernel"):  # DepthwiseConv2D: w is `kernel` again
            object.__setattr__(layer, "kernel", vars(layer).pop("_kernel"))
        compat.refresh_call_signature(layer)
    return layer
