"""Continuous Sparsification (CS, the paper's Algorithm 3), all in one place.

- the mask rule ``continuous`` (``m = sigmoid(beta * s)``, penalty ``lambda * ||m||_1``) is
  every masked layer's default and lives with the layers (`keras_lottery.layers.continuous`);
- the annealing of `beta` over a round, ``beta_t = beta_0 * (beta_T / beta_0) ** (t / T)``
  (`TemperatureSchedule`, `TemperatureCallback`; `initial_temperature` = `beta_0`,
  `final_temperature` = `beta_T`);
- the round-end reset ``s <- min(beta_T * s_T, s0)``, ``beta <- beta_0`` (`cs_mask_reset`);
- the method with its settings (`ContinuousSparsification`).
"""

import math

import keras
import numpy as np

from keras_lottery import compat
from keras_lottery.layers import REMOVED_LOGIT, annealing, masked_layers
from keras_lottery.layers.mask_rules import MAX_MASK_LOGIT
from keras_lottery.layers.masked_layer import DEFAULT_MASK_INIT
from keras_lottery.methods.base import LEARNED_MASK_SETTINGS, Method, Setting

#: CS round-end resets: the paper's `min(beta_T s_T, s0)` or the released code's `min(s_T, s0)`.
CS_RESETS = ("paper", "official")


# The temperature beta.
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
        problem = self.problem(final_temperature, initial_temperature)
        if problem:
            name, value, allowed = problem
            raise ValueError(f"{name} must be {allowed}, got {value!r}.")
        self.initial_temperature = float(initial_temperature)
        self.final_temperature = float(final_temperature)

    @staticmethod
    def problem(final_temperature, initial_temperature):
        """`(setting, value, what is allowed)` unless `0 < beta_0 < beta_T`, both finite: the
        one check of the temperatures (the schedule, the callback and the search's settings);
        None when they are fine."""
        try:
            initial, final = float(initial_temperature), float(final_temperature)
        except (TypeError, ValueError):
            initial = final = float("nan")
        if not (initial > 0 and math.isfinite(initial)):
            return ("initial_temperature", initial_temperature, "a finite number > 0 (beta_0)")
        if not (final > initial and math.isfinite(final)):
            return ("final_temperature", final_temperature, "finite and greater than "
                    f"initial_temperature ({initial:g}) (beta_T > beta_0)")
        return None

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
    hook): the layers read `beta` from the optimizer's step counter
    (`layers.annealing.AnnealingClock`: step `k` of an epoch that began at `beta_e`
    trains with `beta_e * r ** k`, computed as `k` float32 products, with
    `r = (beta_T / beta_0) ** (1 / T)`), inside the compiled (or XLA) step, however
    many times a layer is called. The callback binds the clock when `fit` starts,
    assigns the exact `beta_t` at every epoch's start and end, and sets the clock
    inactive when `fit` ends.

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
        self._masked, self._total, self._steps_per_epoch, self._t = [], 1, 1, 0
        self._clock, self._rate = None, 1.0

    def temperature_at(self, t, total):
        """`beta_t` for `t` of `total` steps (or epochs)."""
        return self.schedule(t, total)

    def _assign(self, t):
        value = self.temperature_at(t, self._total)
        for layer in self._masked:
            layer.temperature.assign(value)
        return value

    def _set_rate(self, rate):
        self._rate = rate
        for layer in self._masked:
            layer.temperature_rate.assign(rate)

    def on_train_begin(self, logs=None):
        self._masked = masked_layers(self.model, required_by="TemperatureCallback")
        epochs = (self.params or {}).get("epochs") or 1
        steps = self.steps_per_epoch or (self.params or {}).get("steps") or 0
        self._steps_per_epoch = 1 if self.per_epoch else int(steps)
        self._total = epochs * self._steps_per_epoch
        if self.official:  # epoch e of E at e / (E - 1); the schedule clips past the end
            self._total = max(epochs - 1, 1)
        if not self._total:
            raise ValueError("TemperatureCallback: fit() does not know the number of steps per "
                             "epoch; pass steps_per_epoch to the callback or to fit().")
        ratio = self.final_temperature / self.initial_temperature
        self._set_rate(1.0 if self.per_epoch else ratio ** (1.0 / self._total))
        if not self.per_epoch:  # per step, the layers read beta from the optimizer's steps
            self._clock = annealing.clock_for(self.model, self._masked, self._steps_per_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        # Resuming with fit(initial_epoch=k) continues the schedule at epoch k.
        self._t = epoch * self._steps_per_epoch
        value = self._assign(self._t)
        if self._clock is not None:  # beta_e, then beta <- beta * rate at every step
            self._clock.start(annealing.float32_chain(value, self._rate,
                                                      self._steps_per_epoch + 1))

    def on_train_batch_begin(self, batch, logs=None):
        if self.per_epoch or self._clock is not None or not batch:
            return  # the clock anneals in the step (TensorFlow), or the epoch began at beta_t
        # Other backends: beta_t is assigned before each step, into the state the step reads.
        compat.sync_backend_state(self.model)
        value = annealing.float32_chain(self.temperature_at(self._t, self._total), self._rate,
                                        batch + 1)[-1]
        for layer in self._masked:
            layer.temperature.assign(value)

    def on_train_end(self, logs=None):
        self._set_rate(1.0)
        if self._clock is not None:  # later calls (a reset, evaluation) read `temperature`
            self._clock.stop()

    def on_epoch_end(self, epoch, logs=None):
        self._t = (epoch + 1) * self._steps_per_epoch
        value = self._assign(self._t)  # exact beta_t; after the last epoch, beta_T
        if self._clock is not None:  # until the next epoch begins, beta_t as well
            self._clock.start([value])
        if logs is not None:
            logs["temperature"] = self.temperature_at(self._t, self._total)


# The round end.
def cs_mask_reset(layer, initial_temperature, official=False):
    """The CS round-end step: `s <- min(beta_T * s_T, s0)`, then `beta <- beta_0`.

    `beta_T` is the layer's temperature at the end of the round (the paper's
    Algorithm 3). With `official=True`, the authors' released code: it resets
    `beta` first and so applies `s <- min(s_T, s0)`.
    """
    final_temperature = 1.0 if official else layer.temperature.numpy()
    logits = layer.mask_logits.numpy()
    reset = np.minimum(final_temperature * logits, layer.mask_init)
    # Removed logits stay at REMOVED_LOGIT instead of growing by beta_T every round (to -inf).
    layer.mask_logits.assign(np.maximum(reset, REMOVED_LOGIT).astype("float32"))
    layer.temperature.assign(initial_temperature)


# The method.
class ContinuousSparsification(Method):
    """CS: `m = sigmoid(beta * s)`; round end `s <- min(beta_T s_T, s0)`, `beta <- beta_0`.

    Args:
        initial_temperature: `beta_0`, the temperature every round starts at.
        final_temperature: `beta_T`; when given, `round_callbacks` anneals `beta`
            to it over each round (`TemperatureCallback`).
        per_epoch: step `beta` once per epoch instead of every step.
        reset: `"paper"` (`s <- min(beta_T s_T, s0)`) or `"official"` (`min(s_T, s0)`).
        official_temperature: per epoch with the official code's exponent `e / (E - 1)`.
    """

    name = "cs"
    description = "cs (Continuous Sparsification)"
    mask_rule = "continuous"
    default_mask_init = DEFAULT_MASK_INIT
    scales_mask = True
    trained_model_settings = {"mask_scaling": True}
    settings = LEARNED_MASK_SETTINGS + (
        Setting("reset", "paper", "CS round-end reset: paper (s <- min(beta_T*s_T, s0), "
                "Algorithm 3) or official (the released code: beta reset first, so "
                "s <- min(s_T, s0)).", choices=CS_RESETS),
        Setting("mask_scaling", False, "CS: multiply the mask, soft and binary, by "
                "1/sigmoid(s0), as the official CS code (the network starts at w, not "
                "w*sigmoid(s0); the penalty is on the scaled mask).", owner_only=True),
        Setting("initial_temperature", 1.0, "beta_0: temperature at the start of each round.",
                group="schedule"),
        Setting("final_temperature", 200.0, "beta_T: temperature at the end of each round.",
                group="schedule"),
        Setting("temperature_per_epoch", False, "Anneal beta once per epoch instead of every "
                "step.", group="schedule"),
        Setting("official_temperature", False, "Anneal beta per epoch with the official CS "
                "code's exponent: epoch e of E trains at beta_T**(e/(E-1)) (implies per-epoch "
                "steps).", group="schedule"),
    )
    sweep_space = (
        ("mask_init", "float", dict(min_value=-0.05, max_value=0.05)),  # s0
        ("mask_penalty", "float", dict(min_value=1e-8, max_value=1e-5, sampling="log")),  # lambda
        ("final_temperature", "choice", dict(values=[100.0, 200.0, 500.0])),  # beta_T
    )

    def __init__(self, initial_temperature=1.0, final_temperature=None, per_epoch=False,
                 reset="paper", official_temperature=False):
        if reset not in CS_RESETS:
            raise ValueError(f"reset must be one of {list(CS_RESETS)}, got {reset!r}.")
        self.initial_temperature = float(initial_temperature)
        self.final_temperature = final_temperature
        self.per_epoch = per_epoch or official_temperature
        self.official_temperature = official_temperature
        self.reset = reset

    @property
    def anneals_per_step(self):
        return self.final_temperature is not None and not self.per_epoch

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.initial_temperature, settings.final_temperature,
                   per_epoch=settings.temperature_per_epoch, reset=settings.reset,
                   official_temperature=settings.official_temperature)

    @classmethod
    def config_problems(cls, config):  # `config`: CS's own settings
        problem = TemperatureSchedule.problem(config.final_temperature,
                                              config.initial_temperature)
        if problem:  # the schedule's one check of beta_0 and beta_T
            name, value, allowed = problem
            return [(name, value, f"must be {allowed}")]
        problems = []
        # The mask starts at sigmoid(beta_0 * s0); past |x| = 10 its gradient is below 5e-5
        # of its peak and past ~17 exactly 0 in float32.
        limit = MAX_MASK_LOGIT / config.initial_temperature
        if abs(config.mask_init) > limit:
            problems.append(("mask_init", config.mask_init, "the mask would start saturated (no "
                             f"gradient); s0 must lie in [-{limit:g}, {limit:g}] (10 / "
                             "--initial_temperature)"))
        return problems

    def round_callbacks(self):
        if self.final_temperature is None:
            return []
        return [TemperatureCallback(self.final_temperature, self.initial_temperature,
                                    per_epoch=self.per_epoch,
                                    official=self.official_temperature)]

    def round_end(self, layers):
        for layer in layers:
            cs_mask_reset(layer, self.initial_temperature, official=self.reset == "official")
