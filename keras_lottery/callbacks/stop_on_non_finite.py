"""`StopOnNonFinite`: stops training at the first NaN or infinite loss and says where."""

import math

import keras


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
