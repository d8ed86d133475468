"""`MaskSummaries`: the mask state in TensorBoard (`beta`, kept fractions, penalty, histograms
of `s`), on the search's timeline of cumulative epochs."""

import tensorflow as tf

from keras_lottery.callbacks.clock import RoundClock
from keras_lottery.layers import masked_layers, masked_layers_by_key
from keras_lottery.tickets import masks as masks_lib


def remaining_fractions(model):
    """`({layer key: fraction kept}, overall fraction kept)` by the ticket masks."""
    masks = masks_lib.extract_masks(model)
    return ({name: float(mask.mean()) for name, mask in masks.items()},
            masks_lib.remaining_fraction(masks))


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
                for key, layer in masked_layers_by_key(self.model).items():
                    tf.summary.histogram(f"mask_logits/{key}", layer.mask_logits.numpy())
        self._writer.flush()
        if logs is not None:
            logs["remaining"] = overall

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
