"""A tiny search for the kill-and-resume test; prints a line at every phase boundary.

    python tests/resume_run.py DATA_DIR OUTPUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_lottery import search  # noqa: E402
from keras_lottery.config import SearchConfig  # noqa: E402


class Announce(keras.callbacks.Callback):
    """Prints `EPOCH_END` after every epoch so the test can kill at chosen moments."""

    def on_epoch_end(self, epoch, logs=None):
        print(f"EPOCH_END {epoch}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            print("MID_EPOCH", flush=True)


def config(data_dir, output_dir):
    return SearchConfig(
        data_dir=data_dir, output_dir=output_dir, validation_examples=200, rounds=2, epochs=3,
        batch_size=50, ticket_epoch=1, ticket_epochs=2, dense_baseline=True, mask_init=-0.01,
        mask_penalty=1e-6, rewind_epoch=1, verbose=0, seed=3, augment=True)


if __name__ == "__main__":
    original_fit = search.Search._fit

    def fit_with_announce(self, model, epochs, callbacks, backup_name, stream):
        return original_fit(self, model, epochs, [Announce()] + callbacks, backup_name, stream)

    search.Search._fit = fit_with_announce
    search.run(config(sys.argv[1], sys.argv[2]))
    print("DONE", flush=True)
