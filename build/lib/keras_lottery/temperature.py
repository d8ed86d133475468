"""The temperature `beta` of CS: its exponential schedule and the callback that anneals it.

`beta_t = beta_0 * (beta_T / beta_0) ** (t / T)` over a round of `T` steps
(`initial_temperature` = `beta_0`, `final_temperature` = `beta_T`). Only CS
anneals `beta` (`Method.anneals_temperature`); its round-end step sets it back
to `beta_0` (`keras_lottery.methods`).
"""

import math

import keras

from keras_lottery.clock import require_masked_layers, steps_per_epoch
from keras_lottery.layers import masked_layers


def set_temperature(model, value):
    """Assigns `beta = value` to every masked layer of `model`."""
    for layer in masked_layers(model):
        layer.temperature.assign(value)


class TemperatureSchedule:
    """The exponential schedule `beta_t = beta_0 * (beta_T / beta_0) ** (t / T)`.

    Usable on its own in a custom training loop:
    `set_temperature(model, schedule(step, total_steps))` every step.

    Args:
        final_temperature: `beta_T`.
        initial_temperature: `beta_0` (default 1).
    """

    def __init__(self, final_temperature, initial_temperature=1.0):
        initial_temperature, final_temperature = float(initial_temperature), float(final_temperature)
        if not (initial_temperature > 0 and math.isfinite(initial_temperature)):
            raise ValueError(
                f"initial_temperature (beta_0) must be a finite number > 0, got {initial_temperature!r}."
            )
        if not (final_temperature >= initial_temperature and math.isfinite(final_temperature)):
            raise ValueError(
                f"final_temperature (beta_T) must be finite and >= initial_temperature "
                f"({initial_temperature}), got {final_temperature!r}."
            )
        self.initial_temperature = initial_temperature
        self.final_temperature = final_temperature

    def __call__(self, t, total):
        """`beta_t` after `t` of `total` steps (clipped to `beta_T` past the end)."""
        ratio = self.final_temperature / self.initial_temperature
        return self.initial_temperature * ratio ** (min(t, total) / total)


class TemperatureCallback(keras.callbacks.Callback):
    """Anneals `beta` over one round: `beta_t = beta_0 * (beta_T / beta_0) ** (t / T)`.

    Each `fit` call is a round. `t` counts training steps (or epochs with
    `per_epoch=True`) from the start of the round; step `t` trains with
    `beta_t`, and after the last step `beta = beta_T`, the value the
    round-end reset uses. Per step, the callback does no work (it has no batch
    hook): it sets each layer's `temperature_rate` to
    `(beta_T / beta_0) ** (1 / T)` once, and every training call of a layer
    multiplies its `temperature` by it inside the compiled (or XLA) step,
    after the mask has read it. The callback assigns the exact `beta_t` at
    every epoch's start and end and puts the rate back to 1 when `fit` ends.

    Args:
        final_temperature: `beta_T`.
        initial_temperature: `beta_0` (default 1).
        per_epoch: step `beta` once per epoch instead of every step.
        steps_per_epoch: needed only when `fit` cannot tell the number of steps.
        official: with `per_epoch`, the official CS code's exponent: epoch `e` of `E`
            trains with `beta_0 * (beta_T / beta_0) ** (e / (E - 1))`, so the last
            epoch already trains at `beta_T` (the paper's `t / T` reaches it only
            after the last epoch).
    """

    def __init__(self, final_temperature, initial_temperature=1.0, per_epoch=False,
                 steps_per_epoch=None, official=False):
        if official and not per_epoch:
            raise ValueError("TemperatureCallback: official=True is a per-epoch schedule; "
                             "pass per_epoch=True.")
        self.official = bool(official)
        super().__init__()
        self.schedule = TemperatureSchedule(final_temperature, initial_temperature)
        self.initial_temperature = self.schedule.initial_temperature
        self.final_temperature = self.schedule.final_temperature
        self.per_epoch = bool(per_epoch)
        self.steps_per_epoch = steps_per_epoch
        self._masked = []
        self._total = 1
        self._steps_per_epoch = 1
        self._t = 0

    def temperature_at(self, t, total):
        """`beta_t` for `t` of `total` steps (or epochs)."""
        return self.schedule(t, total)

    def _assign(self, t):
        value = self.temperature_at(t, self._total)
        for layer in self._masked:
            layer.temperature.assign(value)

    def _set_rate(self, rate):
        for layer in self._masked:
            layer.temperature_rate.assign(rate)

    def on_train_begin(self, logs=None):
        self._masked = require_masked_layers(self.model, "TemperatureCallback")
        epochs = (self.params or {}).get("epochs") or 1
        self._steps_per_epoch = 1 if self.per_epoch else steps_per_epoch(self, self.steps_per_epoch)
        self._total = epochs * self._steps_per_epoch
        if self.official:  # epoch e of E at e / (E - 1); the schedule clips past the end
            self._total = max(epochs - 1, 1)
        if not self._total:
            raise ValueError(
                "TemperatureCallback: fit() does not know the number of steps per "
                "epoch; pass steps_per_epoch to the callback or to fit()."
            )
        # Per step, the layers advance beta themselves: beta_{t+1} = beta_t * rate.
        ratio = self.final_temperature / self.initial_temperature
        self._set_rate(1.0 if self.per_epoch else ratio ** (1.0 / self._total))

    def on_epoch_begin(self, epoch, logs=None):
        # Resuming with fit(initial_epoch=k) continues the schedule at epoch k;
        # the exact value each epoch also removes the rounding of the in-graph products.
        self._t = epoch * self._steps_per_epoch
        self._assign(self._t)

    def on_train_end(self, logs=None):
        self._set_rate(1.0)  # later training calls (evaluation aside) keep beta as it is

    def on_epoch_end(self, epoch, logs=None):
        self._t = (epoch + 1) * self._steps_per_epoch
        self._assign(self._t)  # exact beta_t; after the last epoch, beta_T for the reset
        if logs is not None:
            logs["temperature"] = self.temperature_at(self._t, self._total)
