"""`MaskSummaries`: the mask state in TensorBoard (`beta`, kept fractions, penalty, histograms
of `beta * s`), on the search's timeline of cumulative steps and epochs."""

import numpy as np
import tensorflow as tf

from keras_lottery.callbacks import summary_files
from keras_lottery.callbacks.clock import RoundClock
from keras_lottery.layers import masked_layers, masked_layers_by_key
from keras_lottery.tickets import masks as masks_lib


def remaining_fractions(model):
    """`({layer key: fraction kept}, overall fraction kept)` by the ticket masks."""
    masks = masks_lib.extract_masks(model)
    return ({name: float(mask.mean()) for name, mask in masks.items()},
            masks_lib.remaining_fraction(masks))


def _temperature(layer):
    """`beta` of `layer` at this step (as its next training step reads it), a float."""
    return float(np.asarray(layer.current_temperature()))


class MaskSummaries(RoundClock):
    """Writes the mask state to TensorBoard every `update_freq` steps and every epoch.

    Scalars, at the global training step: `mask/temperature` (beta), `mask/remaining`
    overall and `mask/remaining/<layer key>`, `mask/penalty` (`lambda * ||m||_1`). At epoch
    ends (step: the cumulative epoch): per layer a histogram `mask/beta_s/<layer key>` of the
    logits that still decide the ticket, `beta * s` inside `[-window, window]` (`sigmoid` is
    within 5e-5 of 0 or 1 outside it: those groups have settled), and the counts of settled
    groups `mask/settled/removed` and `mask/settled/kept`. Without the window, the groups a
    reset parked at `beta_T * s_T` (thousands below 0) would squeeze the ones near 0 into one
    bar. Also adds `remaining` to the epoch logs. One event file per run and process
    (`summary_files`).
    """

    #: Half width of the histograms' window of `beta * s`.
    window = 10.0

    def __init__(self, log_dir, update_freq=100, histograms=True, epoch_offset=0):
        super().__init__()
        self.log_dir = log_dir
        self.update_freq = int(update_freq)
        self.histograms = histograms
        #: Epochs trained before this fit (earlier rounds): summaries sit on one timeline.
        self.epoch_offset = int(epoch_offset)

    @property
    def _global_step(self):
        return self._step + self.epoch_offset * self._steps_per_epoch

    @property
    def _writer(self):
        return summary_files.writer(self.log_dir)

    def _write_scalars(self, step):
        layers = masked_layers(self.model)
        per_layer, overall = remaining_fractions(self.model)
        with self._writer.as_default(step=step):
            tf.summary.scalar("mask/temperature", _temperature(layers[0]))
            tf.summary.scalar("mask/remaining", overall)
            tf.summary.scalar("mask/penalty", sum(l.mask_penalty_value() for l in layers))
            for name, fraction in per_layer.items():
                tf.summary.scalar(f"mask/remaining/{name}", fraction)
        return overall

    def on_train_batch_end(self, batch, logs=None):
        if self._tick(batch, self.update_freq):
            self._attach_state()
            self._write_scalars(self._global_step)

    def on_epoch_end(self, epoch, logs=None):
        overall = self._write_scalars(self._global_step)
        if self.histograms:
            self._write_histograms(epoch + 1 + self.epoch_offset)
        self._writer.flush()
        if logs is not None:
            logs["remaining"] = overall

    def _write_histograms(self, step):
        removed = kept = 0
        with self._writer.as_default(step=step):
            for key, layer in masked_layers_by_key(self.model).items():
                beta_s = _temperature(layer) * layer.mask_logits.numpy().ravel()
                inside = np.abs(beta_s) <= self.window
                removed += int(np.sum(beta_s < -self.window))
                kept += int(np.sum(beta_s > self.window))
                tf.summary.histogram(f"mask/beta_s/{key}", beta_s[inside])
            tf.summary.scalar("mask/settled/removed", removed)
            tf.summary.scalar("mask/settled/kept", kept)

    def on_train_end(self, logs=None):
        self._writer.flush()
