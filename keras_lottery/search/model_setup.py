"""The model a search trains and how it is compiled: model, optimizer, learning-rate schedule.

The optimizer of `w` is SGD (`FusedSGD`) or Adam (`FusedAdam`) from the config; weight decay
never touches the mask logits `s`; with `--mask_optimizer` or
`--mask_learning_rate`, `s` gets its own optimizer through `MaskOptimizer`.
"""

import keras

from keras_lottery import methods, models, optimizers
from keras_lottery.data import LANGUAGE_MODELS
from keras_lottery.layers import masked_layers_by_key
from keras_lottery.metrics import BitsPerCharacter
from keras_lottery.search import distribute
from keras_lottery.search.config import ConfigError
from keras_lottery.tickets import deployed_penalty, snapshots, sparsify


def _base_optimizer(kind, learning_rate, momentum, nesterov, weight_decay, coupled=False):
    """SGD (`FusedSGD`) or Adam (`FusedAdam`), Keras's updates in one kernel per variable;
    weight decay decoupled (Keras's) or coupled (added to the gradient before momentum, as
    PyTorch's SGD and Adam do: `optimizers.CoupledWeightDecay`)."""
    if coupled and weight_decay:
        if kind == "sgd":
            return optimizers.CoupledSGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                         coupled_weight_decay=weight_decay)
        return optimizers.CoupledAdam(learning_rate, coupled_weight_decay=weight_decay)
    if kind == "sgd":
        return optimizers.FusedSGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                   weight_decay=weight_decay or None)
    return optimizers.FusedAdam(learning_rate, weight_decay=weight_decay or None)


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate of `w`: constant, or piecewise decayed at `lr_decay_epochs`.

    The schedule counts the optimizer's steps, which restart every round
    (`RoundManager` resets the optimizer), so each round follows it from the start.
    """
    if not config.lr_decay_epochs:
        return config.learning_rate
    boundaries = [int(epoch * steps_per_epoch) for epoch in config.lr_decay_epochs]
    values = [config.learning_rate * config.lr_decay_factor ** i
              for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config, steps_per_epoch=None):
    """The optimizer of `w` and `s`; weight decay never touches `s` (`mask_logits`).

    With `mask_optimizer` or `mask_learning_rate` set, `s` gets its own
    optimizer (constant learning rate, no weight decay) through `MaskOptimizer`.
    """
    learning_rate = config.learning_rate
    if steps_per_epoch:
        learning_rate = learning_rate_schedule(config, steps_per_epoch)
    coupled = config.weight_decay_mode == "coupled"
    weights_optimizer = _base_optimizer(config.optimizer, learning_rate, config.momentum,
                                        config.nesterov, config.weight_decay, coupled)
    if config.weight_decay and not coupled:
        weights_optimizer.exclude_from_weight_decay(var_names=["mask_logits", "temperature"])
    if config.mask_optimizer == "same" and not config.mask_learning_rate:
        return weights_optimizer
    kind = config.optimizer if config.mask_optimizer == "same" else config.mask_optimizer
    momentum = config.momentum if config.mask_optimizer == "same" else config.mask_momentum
    mask_optimizer = _base_optimizer(kind, config.mask_learning_rate or config.learning_rate,
                                     momentum, config.nesterov and momentum > 0, 0.0)
    return optimizers.MaskOptimizer(weights_optimizer, mask_optimizer)


def build_model(config, input_shape, num_classes, vocabulary_size=None):
    """The search model: masked layers with the method's rule, `s0` and `lambda` (built from
    `--model`, or the model file `--init_from` made masked by `sparsify`)."""
    if config.init_from:
        model = initial_model(config, input_shape, num_classes)
    else:
        arguments = methods.from_config(config).layer_arguments(
            config.mask_init, config.mask_penalty, mask_scaling=config.mask_scaling,
            mask_granularity=config.mask_granularity)
        try:
            model = models.build(config.model, input_shape, num_classes,
                                 unmasked=config.unmasked_layers,
                                 vocabulary_size=vocabulary_size,
                                 options={"width_multiplier": config.width_multiplier},
                                 **arguments)
        except ValueError as error:  # a layer the settings do not fit, named by the error
            raise ConfigError(f"--model={config.model} cannot be built with these settings: "
                              f"{error}") from None
        try:
            deployed_penalty.weigh_penalty(model, config.penalty_cost)
        except ValueError as error:
            raise ConfigError(f"--penalty_cost={config.penalty_cost}: {error}") from None
    if config.supermask:
        snapshots.freeze_weights(model)
    return model


def initial_model(config, input_shape, num_classes):
    """The model saved at `--init_from`, checked against the data and made masked."""
    where = f"--init_from={config.init_from!r}"
    try:
        original = keras.saving.load_model(config.init_from, compile=False)
    except Exception as error:  # noqa: BLE001 - any loading failure is the file's
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"{where} cannot be loaded as a Keras model: {first_line}") from None
    inputs = getattr(original, "inputs", None) or []
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != tuple(input_shape):
        got = [tuple(i.shape[1:]) for i in inputs] or "no Input"
        raise ConfigError(f"{where} takes inputs {got}, but --dataset={config.dataset} gives "
                          f"images of shape {tuple(input_shape)}.")
    outputs = original.outputs
    if len(outputs) != 1 or outputs[0].shape[-1] != num_classes:
        raise ConfigError(f"{where} has outputs {[tuple(o.shape[1:]) for o in outputs]}; "
                          f"--dataset={config.dataset} has {num_classes} classes (one logit each).")
    last = original.layers[-1]
    if getattr(getattr(last, "activation", None), "__name__", "") == "softmax" or isinstance(
            last, keras.layers.Softmax):
        raise ConfigError(f"{where} ends in a softmax; the search's loss takes logits: save "
                          "the model without its final softmax.")
    try:
        return sparsify(original, method=config.method, mask_init=config.mask_init,
                        mask_penalty=config.mask_penalty, exclude=config.unmasked_layers,
                        mask_scaling=config.mask_scaling,
                        mask_granularity=config.mask_granularity,
                        penalty_cost=config.penalty_cost)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def execution_steps(steps_per_epoch, most):
    """Steps per call into the compiled step: the largest divisor of `steps_per_epoch`
    that is at most `most`, so that no call runs across an epoch's end."""
    return max(k for k in range(1, max(1, min(most, steps_per_epoch)) + 1)
               if steps_per_epoch % k == 0)


def compile_model(model, config, steps_per_epoch=None, steps_per_execution=None):
    """Compiles `model` for a search: SGD/Adam from `config`, cross-entropy, accuracy (and,
    for a language model's data, bits per character)."""
    bits = [BitsPerCharacter()] if config.dataset in LANGUAGE_MODELS else []
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="task_loss"),
            *bits,
        ],
        # Keras's JAX trainer without jit runs every op eagerly (7x slower here): always jit
        jit_compile=config.jit_compile or keras.backend.backend() == "jax",
        steps_per_execution=steps_per_execution or config.steps_per_execution,
    )
    return distribute.prepare_model(model)


def current_penalty(model, method):
    """The `lambda` the model's masked layers use now (their `penalty_weight` variables:
    one number, or `{key: lambda_l}` when they differ, as with `--penalty_cost=macs`), or
    None for a method without a penalty (IMP)."""
    layers = masked_layers_by_key(model)
    if not method.uses_penalty or not layers:
        return None
    values = {key: float(layer.penalty_weight.numpy()) for key, layer in layers.items()}
    return values.popitem()[1] if len(set(values.values())) == 1 else values
