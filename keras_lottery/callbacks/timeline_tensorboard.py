"""`TimelineTensorBoard`: Keras's TensorBoard callback on the search's timeline of cumulative
epochs (round 2 of 10-epoch rounds starts at epoch 10)."""

import keras


class TimelineTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback with its epoch summaries at `epoch + epoch_offset`, so the
    search's rounds (one `fit` each) form one timeline of cumulative epochs."""

    def __init__(self, log_dir, epoch_offset=0, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.epoch_offset = int(epoch_offset)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + self.epoch_offset, logs)
