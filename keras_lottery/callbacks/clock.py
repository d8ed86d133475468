"""Where a round stands: the step counting that callbacks share.

A round is one `fit` call. It may start at a later epoch when a run resumes
(`fit(initial_epoch=k)`, or Keras's `BackupAndRestore`); callbacks learn that
epoch from the first `on_epoch_begin`, through Keras's public callback API only.
"""

import keras


class RoundClock(keras.callbacks.Callback):
    """Counts the round's training steps from the `batch` index Keras reports.

    Keras reports the last step of each call into the compiled step, so the
    count stays right when one call runs several steps (`steps_per_execution`).
    `_step` is the number of steps of the round trained so far, counted from
    the round's start even when `fit` resumed at a later epoch; `_total` is the
    round's number of steps.
    """

    def __init__(self):
        super().__init__()
        self._steps_per_epoch = self._total = self._step = self._epoch_start = 0

    def on_train_begin(self, logs=None):
        self._steps_per_epoch = int((self.params or {}).get("steps") or 0)
        self._total = ((self.params or {}).get("epochs") or 1) * self._steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._step = self._epoch_start = epoch * self._steps_per_epoch

    def _attach_state(self):
        """Before a callback reads or writes the model's variables in the middle of an epoch:
        under JAX the trainer holds the state apart from the variables while it runs the
        epoch; reading `self.model` attaches it (Keras's `jax_state_sync`), and the next step
        then starts from the variables, this callback's writes included. Free elsewhere."""
        return self.model

    def _tick(self, batch, every=0):
        """Moves the count to the end of `batch`; True when it passed a multiple of `every`."""
        in_epoch = batch + 1
        if self._steps_per_epoch:
            in_epoch = min(in_epoch, self._steps_per_epoch)
        previous, self._step = self._step, self._epoch_start + in_epoch
        return every > 0 and self._step // every > previous // every
