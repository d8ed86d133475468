"""`EpochScalars`: a phase's epoch logs in TensorBoard, train and validation as tags of one run.

Keras's `TensorBoard` callback writes `train/` and `validation/` sub-runs, a new event file per
`fit`, an `evaluation_*_vs_iterations` series that restarts every `fit`, and a graph that
TensorBoard cannot show for masked layers. This callback writes only the epoch logs, into one
run and one event file (`summary_files`), at `epoch + epoch_offset` (1-based): `accuracy/train`
and `accuracy/validation` (from `val_accuracy`), `loss/...`, `task_loss/...`, and the
optimizer's `learning_rate`. `remaining` and `temperature` are `MaskSummaries`' (`mask/...`).
"""

import keras
import tensorflow as tf

from keras_lottery.callbacks import summary_files

#: Epoch logs other callbacks already write under their own tags.
_WRITTEN_ELSEWHERE = ("remaining", "temperature")


def epoch_tags(logs):
    """`{tag: value}` of Keras epoch `logs`: `val_x` -> `x/validation`, `x` -> `x/train`,
    `budget_x` -> `budget/x`."""
    tags = {}
    for key, value in (logs or {}).items():
        if key in _WRITTEN_ELSEWHERE:
            continue
        if key.startswith("budget_"):  # the Budget callback's: budget/multiplier, budget/cost
            tags[f"budget/{key[len('budget_'):]}"] = value
            continue
        name, split = (key[4:], "validation") if key.startswith("val_") else (key, "train")
        tags[f"{name}/{split}"] = value
    return tags


class EpochScalars(keras.callbacks.Callback):
    """Writes each epoch's logs into TensorBoard run `log_dir` at step `epoch + 1 +
    epoch_offset`, so that the rounds of a search (one `fit` each) form one timeline."""

    def __init__(self, log_dir, epoch_offset=0):
        super().__init__()
        self.log_dir = log_dir
        self.epoch_offset = int(epoch_offset)

    def on_epoch_end(self, epoch, logs=None):
        values = epoch_tags(logs)
        rate = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        if rate is not None:
            values["learning_rate"] = rate
        with summary_files.writer(self.log_dir).as_default(step=epoch + 1 + self.epoch_offset):
            for tag, value in values.items():
                tf.summary.scalar(tag, float(keras.ops.convert_to_numpy(value)))

    def on_train_end(self, logs=None):
        summary_files.writer(self.log_dir).flush()
