"""Keras callbacks that run a ticket search: one `model.fit` call is one round.

- `TemperatureCallback` anneals `beta` exponentially from `beta_0` to `beta_T`.
- `RoundManager` snapshots the rewind point `w_k`, records the ticket at the
  end of every round, performs the method's round-end step (CS:
  `s <- min(beta_T * s_T, s0)`, `beta <- beta_0`; ISS: remove `s_T < s0`;
  IMP: magnitude pruning) and optionally rewinds `w <- w_k`.
- `MaskSummaries` writes `beta`, remaining fractions, the penalty and
  histograms of `s` to TensorBoard.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_lottery import methods, tickets
from keras_lottery import weights as weights_lib
from keras_lottery.layers import masked_layers


def _require_masked_layers(model, who):
    layers = masked_layers(model)
    if not layers:
        raise ValueError(
            f"{who}: the model has no masked layers (CSDense, CSConv2D, ...)."
        )
    return layers


def start_epoch(model):
    """The epoch `fit` starts at: 0, or the epoch Keras's `BackupAndRestore` restored.

    `BackupAndRestore` tells `fit` through the model's `_initial_epoch`; the
    callbacks that count steps or epochs read it here to continue where it resumed.
    """
    return getattr(model, "_initial_epoch", None) or 0


def round_steps(callback, steps_per_epoch=None):
    """`(steps_per_epoch, total, done)` for the round that `callback`'s `fit` call trains.

    `total` is the round's number of training steps and `done` the steps already
    trained when `fit` starts: 0, or those before the epoch a run resumed by
    `BackupAndRestore` continues at. `steps_per_epoch` overrides what `fit`
    reports (0 when neither knows).
    """
    params = callback.params or {}
    steps = int(steps_per_epoch or params.get("steps") or 0)
    return steps, (params.get("epochs") or 1) * steps, start_epoch(callback.model) * steps


class _RoundClock(keras.callbacks.Callback):
    """Counts the round's training steps from the `batch` index Keras reports.

    Keras reports the last step of each call into the compiled step, so the
    count stays right when one call runs several steps (`steps_per_execution`)
    and when a resumed run starts at a later epoch.
    """

    def __init__(self):
        super().__init__()
        self._steps_per_epoch = self._total = self._step = self._epoch_start = 0

    def _start_clock(self):
        self._steps_per_epoch, self._total, self._step = round_steps(self)
        self._epoch_start = self._step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._step

    def _tick(self, batch, every=0):
        """Moves the count to the end of `batch`; True when it passed a multiple of `every`."""
        in_epoch = batch + 1
        if self._steps_per_epoch:
            in_epoch = min(in_epoch, self._steps_per_epoch)
        previous, self._step = self._step, self._epoch_start + in_epoch
        return every > 0 and self._step // every > previous // every


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
    """

    def __init__(self, final_temperature, initial_temperature=1.0, per_epoch=False,
                 steps_per_epoch=None):
        super().__init__()
        self.schedule = TemperatureSchedule(final_temperature, initial_temperature)
        self.initial_temperature = self.schedule.initial_temperature
        self.final_temperature = self.schedule.final_temperature
        self.per_epoch = bool(per_epoch)
        self.steps_per_epoch = steps_per_epoch
        self._layers = []
        self._total = 1
        self._steps_per_epoch = 1
        self._t = 0

    def temperature_at(self, t, total):
        """`beta_t` for `t` of `total` steps (or epochs)."""
        return self.schedule(t, total)

    def _assign(self, t):
        value = self.temperature_at(t, self._total)
        for layer in self._layers:
            layer.temperature.assign(value)

    def _set_rate(self, rate):
        for layer in self._layers:
            layer.temperature_rate.assign(rate)

    def on_train_begin(self, logs=None):
        self._layers = _require_masked_layers(self.model, "TemperatureCallback")
        if self.per_epoch:
            self._steps_per_epoch, self._total = 1, self.params.get("epochs") or 1
            self._t = start_epoch(self.model)
        else:
            self._steps_per_epoch, self._total, self._t = round_steps(self, self.steps_per_epoch)
            if not self._total:
                raise ValueError(
                    "TemperatureCallback: fit() does not know the number of steps per "
                    "epoch; pass steps_per_epoch to the callback or to fit()."
                )
        self._assign(self._t)
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


class RoundManager(keras.callbacks.Callback):
    """Snapshots `w_k`, records each round's ticket and runs the method's round-end step.

    Every `fit` call with this callback is one round. In the first round the
    callback copies all non-mask weights (kernels, biases, batch-norm
    statistics) after `rewind_epoch` epochs (`0` is `w_0`, before any update)
    and after `ticket_epoch` epochs (the weights tickets are retrained from).
    At the end of each round it stores the ticket masks in `tickets` (CS, ISS:
    `b(s_T)`; IMP: the mask after pruning), applies `method.round_end` to the
    masked layers and, if `rewind_epoch` is set, rewinds `w <- w_k`.

    Args:
        rewind_epoch: `k` for rewinding between rounds, or None for no rewinding.
        ticket_epoch: epoch of the weights kept for ticket retraining (default 0: `w_0`).
        method: a `keras_lottery.methods.Method` (default: CS with `beta_0 = 1`).
        reset_optimizer: zero the optimizer's state (and step count) at round end.
    """

    def __init__(self, rewind_epoch=None, ticket_epoch=0, method=None, reset_optimizer=True,
                 on_snapshot=None):
        super().__init__()
        for name, value in (("rewind_epoch", rewind_epoch), ("ticket_epoch", ticket_epoch)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}.")
        self.rewind_epoch = rewind_epoch
        self.ticket_epoch = ticket_epoch
        self.method = method if method is not None else methods.ContinuousSparsification()
        self.reset_optimizer = reset_optimizer
        self.on_snapshot = on_snapshot
        self.round = 0
        self.tickets = []
        self.snapshots = {}

    def restore_state(self, finished_rounds, snapshots, tickets=()):
        """Continues after `finished_rounds` rounds with the given snapshots (for resuming)."""
        self.round = int(finished_rounds)
        self.snapshots = dict(snapshots)
        self.tickets = list(tickets)

    def _take_snapshot(self, epoch):
        if epoch in self.snapshots:
            return
        self.snapshots[epoch] = weights_lib.snapshot(self.model)
        if self.on_snapshot is not None:
            self.on_snapshot(epoch, self.snapshots[epoch])

    @property
    def rewind_weights(self):
        """The snapshot `w_k` used for rewinding (None when not rewinding)."""
        return None if self.rewind_epoch is None else self.snapshots.get(self.rewind_epoch)

    @property
    def ticket_weights(self):
        """The snapshot tickets are retrained from (`w_0` by default)."""
        return self.snapshots.get(self.ticket_epoch)

    def snapshot_epochs(self):
        """The epochs of the first round whose weights this manager keeps."""
        return {e for e in (self.rewind_epoch, self.ticket_epoch) if e is not None}

    def on_train_begin(self, logs=None):
        _require_masked_layers(self.model, "RoundManager")
        if self.round == 0:
            epochs = self.params.get("epochs")
            for epoch in self.snapshot_epochs():
                if epochs is not None and epoch > epochs:
                    raise ValueError(
                        f"RoundManager: snapshot epoch {epoch} is past the end of the "
                        f"round ({epochs} epochs)."
                    )
            # The weights at the start of fit are those after `start` epochs: w_0 on a
            # fresh start, w_k when BackupAndRestore resumed the round at epoch k.
            start = start_epoch(self.model)
            if start in self.snapshot_epochs():
                self._take_snapshot(start)

    def on_epoch_end(self, epoch, logs=None):
        if self.round == 0 and (epoch + 1) in self.snapshot_epochs():
            self._take_snapshot(epoch + 1)

    def on_train_end(self, logs=None):
        layers = masked_layers(self.model)
        if not self.method.ticket_after_round_end:
            self.tickets.append(tickets.extract_masks(self.model))
        self.method.round_end(layers)
        if self.method.ticket_after_round_end:
            self.tickets.append(tickets.extract_masks(self.model))
        if self.rewind_weights is not None:
            weights_lib.restore(self.model, self.rewind_weights)
        if self.reset_optimizer and getattr(self.model, "optimizer", None) is not None:
            reset_optimizer_state(self.model.optimizer)
        self.round += 1


def reset_optimizer_state(optimizer):
    """Zeroes the optimizer's slots (momenta) and step count, keeping its learning rate.

    A fresh state per round restarts learning-rate schedules, as a new run would.
    """
    for variable in optimizer.variables:
        # Keep learning rates and the dynamic loss scale of mixed precision.
        if variable.name in ("learning_rate", "dynamic_scale"):
            continue
        variable.assign(tf.zeros(variable.shape, variable.dtype))


def remaining_fractions(model):
    """`({layer name: fraction kept}, overall fraction kept)` by the ticket masks."""
    masks = tickets.extract_masks(model)
    return ({name: float(mask.mean()) for name, mask in masks.items()},
            tickets.remaining_fraction(masks))


class MaskSummaries(_RoundClock):
    """Writes the mask state to TensorBoard every `update_freq` steps and every epoch.

    Scalars: `mask/temperature` (beta), `mask/remaining` overall and
    `mask/remaining/<layer>`, `mask/penalty` (`lambda * ||m||_1`); histograms
    of `s` per layer at epoch ends. Also adds `remaining` to the epoch logs.
    """

    def __init__(self, log_dir, update_freq=100, histograms=True):
        super().__init__()
        self.log_dir = log_dir
        self.update_freq = int(update_freq)
        self.histograms = histograms
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._start_clock()

    def _write_scalars(self, step):
        layers = masked_layers(self.model)
        per_layer, overall = remaining_fractions(self.model)
        with self._writer.as_default(step=step):
            tf.summary.scalar("mask/temperature", float(layers[0].temperature.numpy()))
            tf.summary.scalar("mask/remaining", overall)
            tf.summary.scalar("mask/penalty", sum(l.mask_penalty_value() for l in layers))
            for name, fraction in per_layer.items():
                tf.summary.scalar(f"mask/remaining/{name}", fraction)
        return overall

    def on_train_batch_end(self, batch, logs=None):
        if self._tick(batch, self.update_freq):
            self._write_scalars(self._step)

    def on_epoch_end(self, epoch, logs=None):
        overall = self._write_scalars(self._step)
        if self.histograms:
            with self._writer.as_default(step=epoch):
                for layer in masked_layers(self.model):
                    tf.summary.histogram(f"mask_logits/{layer.name}", layer.mask_logits.numpy())
        self._writer.flush()
        if logs is not None:
            logs["remaining"] = overall

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


def round_targets(target, rounds):
    """Remaining fraction each round aims at: `target ** (r / rounds)` for r = 1..rounds.

    Each round keeps the same share of the weights the previous round left,
    as in IMP's fixed pruning rate, and the last round lands on `target`.
    """
    return [float(target) ** (r / rounds) for r in range(1, rounds + 1)]


class TargetRemaining(_RoundClock):
    """Makes the round's ticket keep exactly `target` of the maskable weights.

    CS keeps the weights whose logit ends above 0, so a constraint on the
    ticket's size is a constraint on where the logits `s` sit relative to 0.
    From `start` (a fraction of the round's steps) on, every `update_every`
    steps and after the last step, the callback finds the threshold `q` above
    which `target` of all masked logits lie (a global quantile, as CS's own
    threshold is global) and shifts every `s` by `-q`. The shift is the exact
    projection onto the constraint `remaining(b(s)) = target` along the
    direction that leaves the ranking of the logits, and so CS's choice of
    weights, untouched; `lambda` keeps its value. Before `start` the round runs
    as plain CS, so the logits first separate under the task loss and the
    penalty; afterwards the soft mask `sigmoid(beta*s)` the network trains
    with agrees with the ticket it will yield.

    Args:
        target: wanted remaining fraction at the end of the round, in (0, 1).
        start: fraction of the round's steps before the first shift, in [0, 1].
        update_every: steps between shifts.
    """

    def __init__(self, target, start=0.5, update_every=20):
        super().__init__()
        if not 0 < target < 1:
            raise ValueError(f"target remaining must be a fraction in (0, 1), got {target!r}.")
        if not 0 <= start <= 1:
            raise ValueError(f"start must be a fraction of the round in [0, 1], got {start!r}.")
        self.target = float(target)
        self.start = float(start)
        self.update_every = max(1, int(update_every))
        self.history = []

    def on_train_begin(self, logs=None):
        _require_masked_layers(self.model, "TargetRemaining")
        self._start_clock()  # a resumed round continues its count

    def on_train_batch_end(self, batch, logs=None):
        due = self._tick(batch, self.update_every)
        last = self._total and self._step >= self._total
        if self._step < self.start * self._total or not (due or last):
            return
        self.project()

    def project(self):
        """Shifts every `s` so that exactly `target` of them are > 0; returns the shift."""
        layers = masked_layers(self.model)
        logits = [np.asarray(layer.mask_logits.numpy()) for layer in layers]
        flat = np.concatenate([values.ravel() for values in logits])
        keep = int(round(self.target * flat.size))
        if keep <= 0 or keep >= flat.size:
            return 0.0
        # The keep-th and (keep+1)-th largest logits; the threshold lies between them.
        pair = np.partition(flat, [flat.size - keep - 1, flat.size - keep])
        threshold = 0.5 * (float(pair[flat.size - keep - 1]) + float(pair[flat.size - keep]))
        for layer, values in zip(layers, logits):
            layer.mask_logits.assign((values - threshold).astype("float32"))
        self.history.append((self._step, threshold))
        return threshold

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.history:
            logs["target_shift"] = self.history[-1][1]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and remembers where.

    Like Keras's `TerminateOnNaN`, but it records `epoch`, `step` and the loss
    so the caller can say what diverged.
    """

    def __init__(self):
        super().__init__()
        self.diverged = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = {"epoch": self._epoch + 1, "step": batch + 1, "loss": float(loss)}
            self.model.stop_training = True
