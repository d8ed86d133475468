"""`MaskedLayer`: the one masking mechanism every masked layer and every method shares.

A masked layer holds `w` (`_kernel`), `s` (`mask_logits`), `beta`
(`temperature`, with its per-step `temperature_rate`) and `lambda`
(`penalty_weight`), computes with `w * m` where its mask rule
(`keras_lottery.layers.mask_rules`) gives `m`, and adds `lambda * ||m||_1` to the
loss once per replica (`compat.ReplicaLocalLosses`). The concrete layers
(`CSDense`, `CSConv2D`, ...) combine it with their Keras layer.

Mask arguments of every masked layer (besides its Keras layer's own):
    mask_init: `s0`, the initial value of the mask logits `s`.
    mask_penalty: `lambda`, the weight of `||m||_1` in the loss.
    mask_rule: how `m` is computed from `s`: `"continuous"` (CS, `sigmoid(beta*s)`),
        `"stochastic"` (ISS, `Bernoulli(sigmoid(s))`) or `"fixed"` (`1[s > 0]`, not trained).
    mask_seed: seed of the mask samples under the stochastic rule.
    mask_granularity: how many weights one logit decides (`keras_lottery.layers.granularity`):
        `"weight"` (default), `"unit"` (a neuron or filter) or `"block"` (1x4 inputs, Dense).
    mask_scale: `c`, a constant the mask is multiplied by, soft and binary
        (`y = x @ (c * w * m) + b`, penalty `lambda * ||c * m||_1`). The official CS code
        uses `c = 1 / sigmoid(s0)` (`official_mask_scale`), so that the network starts at
        its own weights; 1 (default) for none.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_lottery import compat
from keras_lottery.layers import annealing, granularity, mask_rules
from keras_lottery.layers.ticket_readout import TicketReadout

#: `s0` when none is given: CS's (the search's `--mask_init`). Negative, not 0: a logit that
#: gets no gradient stays at `s0`, and the ticket (`s > 0`) and the saturated soft mask
#: agree on it only if `s0` is not the tie at 0. A fresh model's CS ticket so keeps nothing
#: until training raises `s` above 0; give `mask_init > 0` to start from a ticket that
#: keeps every weight (`sparsify` of a trained model, with `mask_scaling`).
DEFAULT_MASK_INIT = -0.01


def official_mask_scale(mask_init):
    """`1 / sigmoid(s0)`: the official CS code's mask scaling, under which the network
    starts at `w * sigmoid(s0) / sigmoid(s0) = w` (at beta_0 = 1)."""
    return 1.0 + math.exp(-float(mask_init))


def _check_mask_arguments(who, mask_init, mask_penalty, mask_scale, kwargs):
    """`(s0, lambda, c)` as floats; a one-line ValueError naming the layer for a bad one."""
    if kwargs.get("lora_rank"):
        raise ValueError(f"{who} does not support lora_rank; LoRA and masking both rewrite "
                         "the kernel.")
    return (_finite_number(who, "mask_init (s0)", mask_init, "a finite number"),
            _finite_number(who, "mask_penalty (lambda)", mask_penalty, "a finite number >= 0",
                           lambda v: v >= 0),
            _finite_number(who, "mask_scale", mask_scale, "a finite number > 0 (1/sigmoid(s0) "
                           "for the official CS scaling, 1 for none)", lambda v: v > 0))


def set_mask_arguments(layer, mask_init=DEFAULT_MASK_INIT, mask_penalty=0.0, mask_rule="continuous",
                       mask_seed=None, mask_scale=1.0, mask_granularity="weight", kwargs=None):
    """Checks the mask arguments (the module docstring) and sets them on `layer`: in
    `MaskedLayer.__init__`, and on a built layer masked in place (`layers.in_place`)."""
    layer.mask_init, layer.mask_penalty, layer.mask_scale = _check_mask_arguments(
        type(layer).__name__, mask_init, mask_penalty, mask_scale, kwargs or {})
    layer._mask_rule = mask_rules.get_rule(mask_rule)
    layer.granularity = granularity.get(mask_granularity)
    layer.mask_seed, layer.mask_granularity = mask_seed, mask_granularity


def _finite_number(layer_name, name, value, allowed, accept=lambda number: True):
    """`value` as a float; a one-line ValueError naming the layer and `allowed` unless it is
    finite and `accept(value)`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and accept(number)):
        raise ValueError(f"{layer_name}: {name} must be {allowed}, got {value!r}.")
    return number


class MaskedLayer(TicketReadout, compat.ReplicaLocalLosses):
    """The variables `s`, `beta`, `lambda`, the mask API, config and saving of every masked
    layer: `class CSDense(MaskedLayer, keras.layers.Dense)` (arguments: the module docstring).
    A concrete class sets `plain_class` (what `strip` makes of it), `kind` (its name in
    IMP's layerwise rates), `unit_axes` and `takes_blocks` (its groups) and implements
    `_forward(inputs, kernel, gate)`. Reading the ticket: `TicketReadout`."""

    plain_class = kind = None
    unit_axes, takes_blocks = 1, False
    MASK_ARGUMENTS = ("mask_init", "mask_penalty", "mask_rule", "mask_seed", "mask_scale",
                      "mask_granularity")

    def __init__(self, *args, mask_init=DEFAULT_MASK_INIT, mask_penalty=0.0,
                 mask_rule="continuous", mask_seed=None, mask_scale=1.0,
                 mask_granularity="weight", **kwargs):
        set_mask_arguments(self, mask_init, mask_penalty, mask_rule, mask_seed, mask_scale,
                           mask_granularity, kwargs)
        super().__init__(*args, **kwargs)

    @property
    def mask_rule(self):  # the name of the rule that maps s to m: continuous, fixed, ...
        return self._mask_rule.name

    def build(self, input_shape):
        super().build(input_shape)
        _add_mask_variables(self)

    def get_config(self):
        return {**super().get_config(),
                **{name: getattr(self, name) for name in self.MASK_ARGUMENTS}}

    def save_own_variables(self, store):  # w, bias, s, beta; not Dense's effective `kernel`
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} cannot be quantized; strip the masks.")

    def mask_variables(self):  # the mask state: s, beta (and its per-step rate), lambda
        return [self.mask_logits, self.temperature, self.temperature_rate, self.penalty_weight]

    def soft_mask(self):
        """The mask `m` of inference (CS: `sigmoid(beta*s)`), one value per group."""
        return self._mask_rule.mask(self, training=False)

    def expand_mask(self, mask):
        """A group-shaped mask tensor as one that multiplies the kernel."""
        return self.granularity.expand(mask, tuple(self._kernel.shape))

    def mask_penalty_value(self):
        """The current penalty `lambda * ||c * m||_1` of this layer (a float)."""
        _, penalty = self._mask_rule.mask_and_penalty(self, training=False)
        if penalty is None:
            return 0.0
        return float(self.penalty_weight.numpy() * self.mask_scale * self.group_size
                     * ops.convert_to_numpy(penalty))

    @property
    def unmasked_kernel(self):  # the weight variable w: the stored kernel, before masking
        return self._kernel

    def masked_kernel(self, training=False):
        """The effective kernel `c * w * m` (`c`: `mask_scale`) of a training or inference
        call; in training, also adds the penalty (`kernel_and_gate`)."""
        return self.kernel_and_gate(training)[0]

    def kernel_and_gate(self, training=False):
        """`(c * w * m, gate)`: the effective kernel (`c`: `mask_scale`) and the groups' mask
        `c * m` that gates the bias (unit masks), else None. In training it also adds the
        penalty `lambda * ||c * m||_1` (as the official code). Writes no state: `beta` is
        read from the layer's clock (`layers.annealing`), so calls per step do not matter."""
        kernel = self._kernel.value
        if self.mask_scale != 1.0:
            kernel = ops.multiply(kernel, ops.cast(self.mask_scale, kernel.dtype))
        kernel, penalty, mask = self._mask_rule.masked_kernel(self, kernel, bool(training))
        if penalty is not None:
            # Once per replica; Keras scales it by 1/replicas like every added loss.
            self.add_replica_loss(ops.multiply(penalty, self.mask_scale)
                                  if self.mask_scale != 1.0 else penalty)
        gate = None
        if self.granularity.gates_bias and getattr(self, "bias", None) is not None:
            gate = ops.multiply(mask, self.mask_scale) if self.mask_scale != 1.0 else mask
        return kernel, gate

    def current_temperature(self):
        """`beta` at this step (`temperature`, or read from the layer's annealing clock)."""
        return annealing.current_temperature(self)

    @property
    def kernel(self):
        """The effective kernel `w * m` used in inference."""
        if getattr(self, "_kernel", None) is None or not hasattr(self, "mask_logits"):
            raise AttributeError("You must build the layer before accessing `kernel`.")
        mask = self.expand_mask(self._mask_rule.mask(self, training=False) * self.mask_scale)
        return ops.multiply(self._kernel, ops.cast(mask, self._kernel.dtype))

    @kernel.setter
    def kernel(self, variable):  # DepthwiseConv2D's `build` assigns `self.kernel`: it is `w`
        self._kernel = variable

    def call(self, inputs, training=None):
        kernel, gate = self.kernel_and_gate(training)
        return self._forward(inputs, kernel, gate)

    def _forward(self, inputs, kernel, gate):
        """The Keras layer's computation with `kernel`; `gate` (or None) multiplies the bias."""
        raise NotImplementedError


def _add_mask_variables(layer):
    """`s` (one logit per group), `beta`, its per-step rate and `lambda` of a built layer; all
    float32 under mixed precision (autocast=False)."""
    kernel_shape = tuple(layer._kernel.shape)
    shape = layer.granularity.group_shape(layer, kernel_shape)
    #: Weights per logit: the penalty counts them, so `lambda` stays per weight.
    layer.group_size = int(np.prod(kernel_shape)) // int(np.prod(shape))
    layer.mask_logits = layer.add_weight(
        name="mask_logits", shape=shape, initializer=keras.initializers.Constant(layer.mask_init),
        trainable=layer._mask_rule.trains_logits, dtype="float32", autocast=False)
    layer.temperature = _scalar_weight(layer, "temperature", 1.0)
    layer.temperature_rate = _scalar_weight(layer, "temperature_rate", 1.0)
    layer.penalty_weight = _scalar_weight(layer, "penalty_weight", layer.mask_penalty)
    if layer._mask_rule.samples:
        layer.seed_generator = keras.random.SeedGenerator(layer.mask_seed)


def _scalar_weight(layer, name, value):
    """A float32 scalar of mask state (not trained, never autocast): `beta`, its per-step
    rate, `lambda`. Callbacks assign them outside the step, to every replica at once
    (aggregation "none": no cross-replica merge), so changing one does not retrace the step;
    the layer only reads them (`layers.annealing`)."""
    return layer.add_weight(name=name, shape=(), initializer=keras.initializers.Constant(value),
                            trainable=False, dtype="float32", autocast=False,
                            aggregation="none")


def gated_bias(layer, gate):
    """`layer`'s bias, times `gate` (each unit's `c * m` in this call) unless it is None."""
    bias = layer.bias
    if gate is not None:
        bias = ops.multiply(bias, ops.cast(ops.reshape(gate, tuple(bias.shape)), bias.dtype))
    return bias


def bias_and_activation(layer, outputs, channels, gate):
    """`layer`'s bias (`gated_bias`, broadcast along the channel axis of its `data_format`)
    and activation."""
    if layer.bias is not None:
        bias = gated_bias(layer, gate)
        rank = len(outputs.shape) - 2
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            shape = (1, channels) + (1,) * rank
        else:
            shape = (1,) * (rank + 1) + (channels,)
        outputs = ops.add(outputs, ops.reshape(bias, shape))
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs


def masked_layers(model, required_by=None):
    """All masked layers of `model` (or `model` itself), nested models and sublayers included,
    in depth-first order. With `required_by` (a name for the message), no masked layer is a
    one-line ValueError."""
    layers = [layer for layer in compat.flatten_layers(model, include_self=True)
              if isinstance(layer, MaskedLayer)]
    if required_by and not layers:
        raise ValueError(f"{required_by}: the model has no masked layers (CSDense, CSConv2D, ...).")
    return layers


def masked_layers_by_key(model):
    """`{key: layer}` of `model`'s masked layers in `masked_layers`' order. The key is the
    layer's path of names from `model` (`compat.keyed_layers`): a top-level layer's name, or
    `"block_0/attention/query"` inside other layers, unique where names repeat."""
    found = {}
    for key, layer in compat.keyed_layers(model):
        if isinstance(layer, MaskedLayer):
            if key in found:
                raise ValueError(f"two masked layers have the key {key!r}; give them "
                                 "different names.")
            found[key] = layer
    return found
