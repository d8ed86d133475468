"""`AnnealingClock`: the step counter that a masked layer reads its temperature `beta` from.

A masked layer never writes its own state in `call`: a layer called twice in a step (a
shared layer, tied weights) computes what a layer called once computes. Annealing `beta`
over a round is instead read against a step counter the optimizer owns
(`optimizer.iterations`, which advances once per applied step however many times a layer
runs): during an epoch that began at optimizer step `anchor`, step `anchor + k` trains with

    beta = schedule[k]

where `schedule` holds the epoch's values `beta_e, beta_e * r, (beta_e * r) * r, ...` in
float32, each the float32 product of the one before and `r = (beta_T / beta_0) ** (1 / T)`:
the values the in-graph product `beta <- beta * r` of earlier versions gave, bit for bit,
so searches find the same tickets. `TemperatureCallback` binds one clock to every masked
layer of its model at the start of `fit`, writes each epoch's schedule when the epoch
begins, and sets the clock inactive when `fit` ends: then, and in a layer without a clock,
`beta` is the layer's own `temperature` variable (which the callback keeps at the exact
`beta_t` of every epoch boundary, for the round-end reset and checkpoints).
"""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_lottery import compat

#: The attribute a masked layer keeps its clock in (untracked: not a weight, not saved).
CLOCK_ATTRIBUTE = "_annealing_clock"


def float32_chain(start, rate, count):
    """`[b_0, ..., b_{count-1}]` with `b_0 = start` and `b_{k+1} = b_k * rate`, each product
    rounded to float32 as a float32 multiply in a training step rounds it."""
    values = np.empty(count, dtype=np.float32)
    value, rate = np.float32(start), np.float32(rate)
    for k in range(count):
        values[k] = value
        value = np.float32(value * rate)
    return values


class AnnealingClock:
    """`steps` (advanced once per training step: the optimizer's `iterations`), `anchor`
    (the step at which the epoch began), `schedule` (`beta` at each step of the epoch) and
    `active` (whether layers read the schedule or their own `temperature`)."""

    def __init__(self, steps, length, strategy=None):
        self.steps, self.length = steps, int(length)
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            self.anchor = keras.Variable(int(ops.convert_to_numpy(steps)), dtype=steps.dtype,
                                         trainable=False, name="annealing_anchor",
                                         aggregation="none")
            self.schedule = keras.Variable(np.ones(self.length, "float32"), trainable=False,
                                           name="annealing_schedule", aggregation="none")
            self.active = keras.Variable(0.0, trainable=False, name="annealing_active",
                                         aggregation="none")

    def start(self, values):
        """From the current step on, step `k` trains with `values[k]` (the last value holds
        past the end)."""
        values = np.asarray(values, "float32")[:self.length]
        padded = np.concatenate([values, np.full(self.length - values.size, values[-1],
                                                 "float32")])
        self.anchor.assign(ops.convert_to_numpy(self.steps))
        self.schedule.assign(padded)
        self.active.assign(1.0)

    def stop(self):
        """Layers read their own `temperature` again."""
        self.active.assign(0.0)

    def temperature(self, layer):
        """`beta` of `layer` at the current step (a float32 tensor)."""
        index = ops.clip(ops.subtract(self.steps, self.anchor), 0, self.length - 1)
        scheduled = ops.take(self.schedule, ops.cast(index, "int32"))
        return ops.where(ops.greater(self.active, 0.0), scheduled, layer.temperature)


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


def clock_for(model, layers, length):
    """The clock of `model` for epochs of `length` steps (made once per optimizer and epoch
    length, kept on the model), bound to the masked `layers`; None where the layers cannot
    read the optimizer's step counter inside a step (backends other than TensorFlow: there
    `beta` is assigned per step instead).

    A step traced with another clock (the optimizer was replaced without `compile`, or the
    epochs changed length) is traced again, so that it reads this one.
    """
    if keras.backend.backend() != "tensorflow" or getattr(model, "optimizer", None) is None:
        bind(layers, None)
        return None
    steps = model.optimizer.iterations
    clock = model.__dict__.get(CLOCK_ATTRIBUTE)
    if clock is None or clock.steps is not steps or clock.length != length + 1:
        replaced = clock is not None
        clock = AnnealingClock(steps, length + 1, getattr(model, "distribute_strategy", None))
        object.__setattr__(model, CLOCK_ATTRIBUTE, clock)
        if replaced:
            compat.retrace_compiled_functions(model)
    bind(layers, clock)
    return clock
