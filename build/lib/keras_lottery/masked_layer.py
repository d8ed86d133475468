"""The mask machinery shared by every masked layer: `MaskedLayer`.

A masked layer holds `w` (`_kernel`), `s` (`mask_logits`), `beta`
(`temperature`, with its per-step `temperature_rate`) and `lambda`
(`penalty_weight`), computes with `w * m` where its mask rule
(`keras_lottery.masking`) gives `m`, and adds `lambda * ||m||_1` to the loss
once per replica (`compat.ReplicaLocalLosses`). The concrete layers
(`CSDense`, `CSConv2D`, ...) are in `keras_lottery.layers`.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_lottery import compat, masking


def _check_mask_scale(layer_name, mask_scale):
    try:
        mask_scale = float(mask_scale)
    except (TypeError, ValueError):
        mask_scale = float("nan")
    if not (math.isfinite(mask_scale) and mask_scale > 0):
        raise ValueError(
            f"{layer_name}: mask_scale must be a finite number > 0 (1/sigmoid(s0) for the "
            f"official CS scaling, 1 for none), got {mask_scale!r}.")
    return mask_scale


def official_mask_scale(mask_init):
    """`1 / sigmoid(s0)`: the official CS code's mask scaling, under which the network
    starts at `w * sigmoid(s0) / sigmoid(s0) = w` (at beta_0 = 1)."""
    return 1.0 + math.exp(-float(mask_init))


def _check_mask_arguments(layer_name, mask_init, mask_penalty):
    try:
        mask_init = float(mask_init)
    except (TypeError, ValueError):
        raise ValueError(
            f"{layer_name}: mask_init (s0) must be a finite number, got {mask_init!r}."
        ) from None
    if not math.isfinite(mask_init):
        raise ValueError(
            f"{layer_name}: mask_init (s0) must be a finite number, got {mask_init!r}."
        )
    try:
        mask_penalty = float(mask_penalty)
    except (TypeError, ValueError):
        raise ValueError(
            f"{layer_name}: mask_penalty (lambda) must be a number >= 0, got {mask_penalty!r}."
        ) from None
    if not (mask_penalty >= 0 and math.isfinite(mask_penalty)):
        raise ValueError(
            f"{layer_name}: mask_penalty (lambda) must be a finite number >= 0, "
            f"got {mask_penalty!r}."
        )
    return mask_init, mask_penalty


class KerasLayerParts:
    """The parts a masked layer shares with its Keras layer: bias and activation, the plain
    class `strip` turns it back into, its config keys, and saving of the stored variables."""

    def _add_bias_and_activate(self, outputs, channels):
        if self.bias is not None:
            if self.data_format == "channels_last":
                shape = (1,) * (self.rank + 1) + (channels,)
            else:
                shape = (1, channels) + (1,) * self.rank
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    @property
    def plain_class(self):
        """The Keras layer class this masked layer extends (used by `strip`)."""
        return self._plain_class

    def _mask_config(self):
        return {
            "mask_init": self.mask_init,
            "mask_penalty": self.mask_penalty,
            "mask_rule": self.mask_rule,
            "mask_seed": self.mask_seed,
            "mask_scale": self.mask_scale,
        }

    # Save the stored variables (w, bias, s, beta), not the effective kernel
    # that Dense/Conv would save through their `kernel` property.
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} cannot be quantized; strip the masks first."
        )


class MaskInspection:
    """What a masked layer tells about its mask: `soft_mask`, `ticket_mask`, kept fraction,
    the current penalty; and `set_ticket_mask` to fix a binary mask."""

    def soft_mask(self):
        """The mask `m` of inference (CS: `sigmoid(beta*s)`); the layer computes with
        `mask_scale * m`."""
        return self._mask_rule.mask(self, training=False)

    def ticket_mask(self):
        """The binary ticket mask `b(s) = 1[s > 0]` as a numpy bool array."""
        return np.asarray(ops.convert_to_numpy(self.mask_logits)) > 0

    def remaining_fraction(self):
        """Fraction of this layer's weights kept by the ticket mask."""
        return float(np.mean(self.ticket_mask()))

    def mask_penalty_value(self):
        """The current penalty `lambda * ||m||_1` of this layer (a float)."""
        _, penalty = self._mask_rule.mask_and_penalty(self, training=False)
        if penalty is None:
            return 0.0
        return float(self.penalty_weight.numpy() * self.mask_scale
                     * ops.convert_to_numpy(penalty))

    def set_ticket_mask(self, mask):
        """Sets `s` so that the binary mask is `mask` (`s = +1` kept, `-1` removed)."""
        mask = np.asarray(mask)
        if mask.shape != tuple(self.mask_logits.shape):
            raise ValueError(
                f"Layer {self.name!r}: ticket mask has shape {mask.shape}, "
                f"expected {tuple(self.mask_logits.shape)}."
            )
        self.mask_logits.assign(np.where(mask.astype(bool), 1.0, -1.0).astype("float32"))



class MaskedLayer(MaskInspection, KerasLayerParts, compat.ReplicaLocalLosses):
    """Mixin shared by every masked layer: the variables `s`, `beta` and the mask API.

    Subclasses call `_init_mask` in `__init__` and `_build_mask` at the end of
    `build`, and implement `_forward(inputs, kernel)`: the wrapped layer's
    computation with the effective kernel `w * m` from `masked_kernel`.
    """

    def _init_mask(self, mask_init, mask_penalty, mask_rule, mask_seed, mask_scale, kwargs):
        if kwargs.get("lora_rank"):
            raise ValueError(
                f"{type(self).__name__} does not support lora_rank; "
                "LoRA and masking both rewrite the kernel."
            )
        self.mask_init, self.mask_penalty = _check_mask_arguments(
            type(self).__name__, mask_init, mask_penalty
        )
        self._mask_rule = masking.get_rule(mask_rule)
        self.mask_seed = mask_seed
        self.mask_scale = _check_mask_scale(type(self).__name__, mask_scale)

    @property
    def mask_rule(self):
        """Name of the rule that maps `s` to the mask (`continuous`, `fixed`, ...)."""
        return self._mask_rule.name

    def _build_mask(self):
        # `s` and `beta` stay float32 under mixed precision (autocast=False).
        self.mask_logits = self.add_weight(
            name="mask_logits",
            shape=tuple(self._kernel.shape),
            initializer=keras.initializers.Constant(self.mask_init),
            trainable=self._mask_rule.trains_logits,
            dtype="float32",
            autocast=False,
        )
        # Training steps update beta in the graph (beta <- beta * rate, as
        # BatchNormalization updates its statistics), so annealing costs no
        # Python work per step; `TemperatureCallback` sets rate once per round.
        self.temperature = self._scalar_weight("temperature", 1.0)
        self.temperature_rate = self._scalar_weight("temperature_rate", 1.0)
        # lambda as a variable, so callbacks can change it without retracing the step.
        self.penalty_weight = self._scalar_weight("penalty_weight", self.mask_penalty)
        if self._mask_rule.samples:
            self.seed_generator = keras.random.SeedGenerator(self.mask_seed)

    def _scalar_weight(self, name, value):
        """A float32 scalar of mask state (not trained, never autocast), updatable in-step.

        Aggregation "none": under `tf.distribute`, a training step's update
        (`beta <- beta * rate`) writes each replica's own copy, the same value
        on every replica, with no cross-replica merge inside the forward pass;
        callbacks assign it outside the step, to every replica at once.
        """
        return self.add_weight(name=name, shape=(), initializer=keras.initializers.Constant(value),
                               trainable=False, dtype="float32", autocast=False,
                               aggregation="none")

    def mask_variables(self):
        """The mask state `s`, `beta` (and its per-step rate) and `lambda`: everything but
        the layer's own weights."""
        return [self.mask_logits, self.temperature, self.temperature_rate, self.penalty_weight]

    @property
    def unmasked_kernel(self):
        """The weight variable `w` (the stored kernel, before masking)."""
        return self._kernel

    def masked_kernel(self, training=False):
        """Returns the effective kernel `c * w * m` and adds the mask penalty when training.

        `c` is `mask_scale` (1 unless the official CS scaling `1/sigmoid(s0)` is on); the
        penalty is then `lambda * ||c * m||_1`, as in the official code.
        """
        kernel = self._kernel.value
        if self.mask_scale != 1.0:
            kernel = ops.multiply(kernel, ops.cast(self.mask_scale, kernel.dtype))
        kernel, penalty = self._mask_rule.masked_kernel(self, kernel, bool(training))
        if penalty is not None and self.mask_scale != 1.0:
            penalty = ops.multiply(penalty, self.mask_scale)
        if penalty is not None:
            # lambda is the variable `penalty_weight` (0 adds 0). Once per replica; Keras
            # scales it by 1/replicas like every added loss.
            self.add_replica_loss(penalty)
        if training and self._mask_rule.uses_temperature:
            # After this step's mask has read beta: beta_{t+1} = beta_t * rate.
            self.temperature.assign(self.temperature * self.temperature_rate)
        return kernel

    @property
    def kernel(self):
        """The effective kernel `w * m` used in inference."""
        if getattr(self, "_kernel", None) is None or not hasattr(self, "mask_logits"):
            raise AttributeError("You must build the layer before accessing `kernel`.")
        mask = self._mask_rule.mask(self, training=False) * self.mask_scale
        return ops.multiply(self._kernel, ops.cast(mask, self._kernel.dtype))

    @kernel.setter
    def kernel(self, variable):
        # Layers whose `build` assigns `self.kernel` (DepthwiseConv2D) store `w` here.
        self._kernel = variable

    def call(self, inputs, training=None):
        return self._forward(inputs, self.masked_kernel(training))

    def _forward(self, inputs, kernel):
        """The wrapped layer's computation with `kernel` in place of its own."""
        raise NotImplementedError
