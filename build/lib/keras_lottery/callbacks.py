"""The Keras callbacks of a ticket search, in one namespace: one `model.fit` call is one round.

- `TemperatureCallback` (`keras_lottery.temperature`) anneals `beta` from `beta_0` to `beta_T`.
- `RoundManager` (`keras_lottery.rounds`) snapshots the rewind point `w_k` and ends each round
  with `end_round` (the ticket, the method's round-end step, the rewind).
- `MaskSummaries` (`keras_lottery.summaries`) writes `beta`, the kept fractions, the penalty
  and histograms of `s` to TensorBoard.
- `TargetRemaining` (`keras_lottery.target`) makes a CS round keep an exact fraction.
- `StopOnNonFinite` (here) stops at the first NaN loss and says where.
"""

import math

import keras

from keras_lottery.rounds import RoundManager, end_round, reset_optimizer_state
from keras_lottery.summaries import MaskSummaries, remaining_fractions
from keras_lottery.target import TargetRemaining, round_targets
from keras_lottery.temperature import TemperatureCallback, TemperatureSchedule, set_temperature

__all__ = [
    "MaskSummaries", "RoundManager", "StopOnNonFinite", "TargetRemaining", "TemperatureCallback",
    "TemperatureSchedule", "TrainingDiverged", "end_round", "remaining_fractions",
    "reset_optimizer_state", "round_targets", "set_temperature",
]


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
