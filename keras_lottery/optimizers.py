"""`MaskOptimizer`: one optimizer for the weights `w`, another for the mask logits `s`.

The paper trains `s` with its own settings (ISS: SGD at lr 20; SS: SGD at lr
100) while the weights use Adam 3e-4 or SGD 0.1, and weight decay must never
reach `s`. `MaskOptimizer` routes every variable named `mask_logits` to
`mask_optimizer` and all others to `weights_optimizer`; it is a regular Keras
optimizer, so `compile`, `fit`, checkpoints and `.keras` saving work as usual.

`FusedSGD` is Keras's SGD with the momentum update done by one TensorFlow
kernel per variable: CS trains as many logits `s` as weights `w`, so the
optimizer's passes over memory are a large part of what CS adds to a step.
"""

import keras
import tensorflow as tf

from keras_lottery import compat

MASK_VARIABLE_NAME = "mask_logits"


def is_mask_variable(variable):
    """Whether `variable` is a layer's mask logits `s` (a Keras variable, or the TensorFlow
    variable behind one, named like `.../mask_logits:0`)."""
    return variable.name.rsplit("/", 1)[-1].split(":", 1)[0] == MASK_VARIABLE_NAME


def _optimizer(value):
    if isinstance(value, dict):
        return keras.optimizers.deserialize(value)
    return keras.optimizers.get(value)


@keras.saving.register_keras_serializable(package="keras_lottery")
class MaskOptimizer(keras.optimizers.Optimizer):
    """Applies `weights_optimizer` to `w` (and every other variable) and `mask_optimizer` to `s`.

    Args:
        weights_optimizer: optimizer (or its name) for every variable but `s`.
        mask_optimizer: optimizer (or its name) for the mask logits `s`.

    `learning_rate` reads and sets the weights optimizer's learning rate, so
    Keras's `LearningRateScheduler` and `ReduceLROnPlateau` act on `w`.
    """

    def __init__(self, weights_optimizer, mask_optimizer, name="lottery_optimizer", **kwargs):
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.weights_optimizer = _optimizer(weights_optimizer)
        self.mask_optimizer = _optimizer(mask_optimizer)
        if self.weights_optimizer is self.mask_optimizer:
            raise ValueError("MaskOptimizer needs two distinct optimizer instances.")

    def build(self, var_list):
        weights = [v for v in var_list if not is_mask_variable(v)]
        masks = [v for v in var_list if is_mask_variable(v)]
        if weights:
            self.weights_optimizer.build(weights)
        if masks:
            self.mask_optimizer.build(masks)
        super().build(var_list)

    @property
    def variables(self):
        return (compat.optimizer_own_variables(self) + self.weights_optimizer.variables
                + self.mask_optimizer.variables)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = compat.optimizer_trainable_variables(self)
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name):
                self.build(trainable_variables)
            self.built = True
        weight_pairs, mask_pairs = [], []
        for grad, variable in zip(grads, trainable_variables):
            (mask_pairs if is_mask_variable(variable) else weight_pairs).append((grad, variable))
        for optimizer, pairs in ((self.weights_optimizer, weight_pairs),
                                 (self.mask_optimizer, mask_pairs)):
            if pairs:
                optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        self.iterations.assign_add(1)

    @property
    def learning_rate(self):
        return self.weights_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        # The base class sets a learning rate while it is being constructed.
        if "weights_optimizer" in self.__dict__:
            self.weights_optimizer.learning_rate = learning_rate
        else:
            keras.optimizers.Optimizer.learning_rate.fset(self, learning_rate)

    def get_config(self):
        return {
            "name": self.name,
            "weights_optimizer": keras.optimizers.serialize(self.weights_optimizer),
            "mask_optimizer": keras.optimizers.serialize(self.mask_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_lottery")
class FusedSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose momentum step is one fused kernel per variable.

    Same arguments, same update and same slots as `SGD` (weight decay stays
    Keras's decoupled step): with momentum, `m <- momentum*m - lr*g` and
    `w <- w + m` (or `w + momentum*m - lr*g` with Nesterov) run as TensorFlow's
    `ResourceApplyKerasMomentum`, one pass over `w`, `m` and `g`, where Keras
    makes about seven. Distributed or non-TensorFlow variables take Keras's path.
    """

    def update_step(self, gradient, variable, learning_rate):
        target = compat.plain_tf_variable(variable)
        if self.momentum == 0 or target is None:
            return super().update_step(gradient, variable, learning_rate)
        accumulator = compat.plain_tf_variable(
            compat.optimizer_slot(self, self.momentums, variable))
        if accumulator is None:
            return super().update_step(gradient, variable, learning_rate)
        dtype = target.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=target.handle, accum=accumulator.handle, lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype), momentum=tf.cast(self.momentum, dtype),
            use_locking=False, use_nesterov=bool(self.nesterov))


@keras.saving.register_keras_serializable(package="keras_lottery")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose step is one fused kernel per variable.

    Same arguments, slots and update as `Adam` (`m += (g - m)(1 - beta_1)`,
    `v += (g^2 - v)(1 - beta_2)`, `w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m /
    (sqrt(v) + epsilon)`; weight decay stays Keras's decoupled step) run as TensorFlow's
    `ResourceApplyAdam`: one pass over `w`, `m`, `v` and `g` where Keras makes about ten.
    CS trains as many logits `s` as weights `w`, so Adam's passes are a large part of what
    CS adds to a step. AMSGrad, distributed or non-TensorFlow variables take Keras's path.
    """

    def update_step(self, gradient, variable, learning_rate):
        target = compat.plain_tf_variable(variable)
        if self.amsgrad or target is None:
            return super().update_step(gradient, variable, learning_rate)
        m, v = (compat.plain_tf_variable(slot) for slot in compat.adam_slots(self, variable))
        if m is None or v is None:
            return super().update_step(gradient, variable, learning_rate)
        dtype = target.dtype
        step = tf.cast(self.iterations + 1, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=target.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False, use_nesterov=False)


class CoupledWeightDecay:
    """Mixin: L2 weight decay added to the gradient, before momentum (PyTorch's SGD/Adam).

    `g <- g + coupled_weight_decay * w` for every variable but the mask logits
    `s`, then the optimizer's own step: with momentum 0.9 this decays `w` about
    10x more than Keras's decoupled `weight_decay` of the same value (the
    official CS code's semantics). Use it instead of `weight_decay`, not with it.
    """

    def __init__(self, *args, coupled_weight_decay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        if self.coupled_weight_decay and not is_mask_variable(variable):
            gradient = gradient + tf.cast(self.coupled_weight_decay, gradient.dtype) * tf.cast(
                variable, gradient.dtype)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay}


@keras.saving.register_keras_serializable(package="keras_lottery")
class CoupledSGD(CoupledWeightDecay, FusedSGD):
    """`FusedSGD` with coupled (L2-in-the-gradient) weight decay: `CoupledWeightDecay`."""


@keras.saving.register_keras_serializable(package="keras_lottery")
class CoupledAdam(CoupledWeightDecay, FusedAdam):
    """`FusedAdam` with coupled (L2-in-the-gradient) weight decay."""
