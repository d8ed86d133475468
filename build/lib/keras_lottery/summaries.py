"""TensorBoard summaries: the mask (`beta`, kept fractions, penalty, histograms of `s`), the
rounds on one timeline, a `summary` run with one point per round, and the run's HParams.

A search's TensorBoard directory holds
- `round_<r>` (Keras's TensorBoard: loss, accuracy, ...) and `round_<r>/masks`
  (`MaskSummaries`), at *cumulative* search epochs and steps: round 2 of 10-epoch
  rounds starts at epoch 10, so the rounds form one timeline;
- `round_<r>_ticket` and `dense`, at the epochs of their own training (they overlay,
  for comparison), with `test/accuracy` at their last epoch;
- `summary`: per round r (step r) `summary/remaining`, `summary/search_accuracy`,
  `summary/ticket_accuracy`; `summary/dense_accuracy` at step 1;
- at its root, the HParams of the search (its flags) and the flags as a text table,
  so TensorBoard's HParams tab compares any set of searches.
"""

import keras
import tensorflow as tf

from keras_lottery import tickets
from keras_lottery.clock import RoundClock
from keras_lottery.layers import masked_layers


def remaining_fractions(model):
    """`({layer name: fraction kept}, overall fraction kept)` by the ticket masks."""
    masks = tickets.extract_masks(model)
    return ({name: float(mask.mean()) for name, mask in masks.items()},
            tickets.remaining_fraction(masks))


class MaskSummaries(RoundClock):
    """Writes the mask state to TensorBoard every `update_freq` steps and every epoch.

    Scalars: `mask/temperature` (beta), `mask/remaining` overall and
    `mask/remaining/<layer>`, `mask/penalty` (`lambda * ||m||_1`); histograms
    of `s` per layer at epoch ends. Also adds `remaining` to the epoch logs.
    """

    def __init__(self, log_dir, update_freq=100, histograms=True, epoch_offset=0):
        super().__init__()
        self.log_dir = log_dir
        self.update_freq = int(update_freq)
        self.histograms = histograms
        #: Epochs trained before this fit (earlier rounds): summaries sit on one timeline.
        self.epoch_offset = int(epoch_offset)
        self._writer = None

    @property
    def _global_step(self):
        return self._step + self.epoch_offset * self._steps_per_epoch

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._writer = tf.summary.create_file_writer(self.log_dir)

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
            self._write_scalars(self._global_step)

    def on_epoch_end(self, epoch, logs=None):
        overall = self._write_scalars(self._global_step)
        if self.histograms:
            with self._writer.as_default(step=epoch + self.epoch_offset):
                for layer in masked_layers(self.model):
                    tf.summary.histogram(f"mask_logits/{layer.name}", layer.mask_logits.numpy())
        self._writer.flush()
        if logs is not None:
            logs["remaining"] = overall

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class TimelineTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback with its epoch summaries at `epoch + epoch_offset`, so the
    search's rounds (one `fit` each) form one timeline of cumulative epochs."""

    def __init__(self, log_dir, epoch_offset=0, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.epoch_offset = int(epoch_offset)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + self.epoch_offset, logs)


def write_scalars(log_dir, step, values):
    """Writes `{tag: value}` scalars (None skipped) at `step` into run `log_dir`."""
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=int(step)):
        for tag, value in values.items():
            if value is not None:
                tf.summary.scalar(tag, float(value))
    writer.close()


def hparams_of(flags):
    """The flags HParams can hold (numbers, booleans, strings; lists as text)."""
    values = {}
    for name, value in sorted(flags.items()):
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if isinstance(value, (bool, int, float, str)):
            values[name] = value
    return values


def write_search_hparams(log_dir, flags):
    """The search's flags as HParams (one session per search) and as a text table."""
    from tensorboard.plugins.hparams import api as hparams_api

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=0):
        hparams_api.hparams(hparams_of(flags))
        rows = "\n".join(f"| `--{name}` | `{value}` |" for name, value in sorted(flags.items()))
        tf.summary.text("flags", "| flag | value |\n|---|---|\n" + rows)
    writer.close()
