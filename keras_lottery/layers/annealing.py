"""`AnnealingClock`: the step counter that a masked layer reads its temperature `beta` from.

A masked layer never writes its own state in `call`: a layer called twice in a step (a
shared layer, tied weights) computes what a layer called once computes. Annealing `beta`
over a round is instead a function of a step counter the optimizer owns
(`optimizer.iterations`, which advances once per applied step however many times a layer
runs):

    beta_t = temperature * temperature_rate ** (steps - anchor)

`temperature` is `beta` at the optimizer step `anchor`; `temperature_rate` is `r` in
`beta_{t+1} = beta_t * r` (the layer's variables). `TemperatureCallback` binds one clock to
every masked layer of its model at the start of `fit` and moves the anchor at each epoch's
start and end, where it assigns the exact `beta_t`; when `fit` ends it sets the rate to 1,
so the clock no longer matters. A layer without a clock reads `beta = temperature`.
"""

import contextlib

import keras
from keras import ops

from keras_lottery import compat

#: The attribute a masked layer keeps its clock in (untracked: not a weight, not saved).
CLOCK_ATTRIBUTE = "_annealing_clock"


class AnnealingClock:
    """`steps` (a variable advanced once per training step, the optimizer's `iterations`)
    and `anchor` (the step at which each layer's `temperature` holds, a variable)."""

    def __init__(self, steps, strategy=None):
        self.steps = steps
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            self.anchor = keras.Variable(int(ops.convert_to_numpy(steps)), dtype=steps.dtype,
                                         trainable=False, name="annealing_anchor",
                                         aggregation="none")

    def elapsed(self):
        """Steps since the anchor, as float32 (a tensor)."""
        return ops.cast(ops.subtract(self.steps, self.anchor), "float32")

    def set_anchor(self):
        """Moves the anchor to the current step (each layer's `temperature` holds now)."""
        self.anchor.assign(ops.convert_to_numpy(self.steps))

    def temperature(self, layer):
        """`beta` of `layer` at the current step (a float32 tensor)."""
        return ops.multiply(layer.temperature,
                            ops.power(layer.temperature_rate, self.elapsed()))


def bind(layers, clock):
    """Makes `clock` the clock of every masked layer in `layers` (None: no clock)."""
    for layer in layers:
        object.__setattr__(layer, CLOCK_ATTRIBUTE, clock)


def clock_of(layer):
    """The clock bound to `layer`, or None."""
    return layer.__dict__.get(CLOCK_ATTRIBUTE)


def current_temperature(layer):
    """`beta` of `layer` at this step: from its clock, or its `temperature` without one."""
    clock = clock_of(layer)
    if clock is None:
        return layer.temperature
    return clock.temperature(layer)


def clock_for(model, layers):
    """The clock of `model` (made once per optimizer and kept on the model), bound to the
    masked `layers`; None where the layers cannot read the optimizer's step counter inside
    a step (backends other than TensorFlow: there `beta` is assigned per step instead).

    A step traced with another clock (the model's optimizer was replaced without
    `compile`) is traced again, so that it reads this one.
    """
    if keras.backend.backend() != "tensorflow" or getattr(model, "optimizer", None) is None:
        bind(layers, None)
        return None
    steps = model.optimizer.iterations
    clock = model.__dict__.get(CLOCK_ATTRIBUTE)
    if clock is None or clock.steps is not steps:
        replaced = clock is not None
        clock = AnnealingClock(steps, getattr(model, "distribute_strategy", None))
        object.__setattr__(model, CLOCK_ATTRIBUTE, clock)
        if replaced:
            compat.retrace_compiled_functions(model)
    bind(layers, clock)
    return clock
