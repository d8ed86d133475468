"""A tiny search for the kill-and-resume test; prints a line at every phase boundary.

    python tests/resume_run.py DATA_DIR OUTPUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_lottery import search  # noqa: E402
from keras_lottery.search.config import SearchConfig  # noqa: E402


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
        mask_penalty=1e-6, rewind_epoch=1, verbose=0, seed=3, augment=True,
        latency_repeats=0)  # a measured speedup differs from run to run


def kill_inside_checkpoint_writes(mode, count):
    """SIGKILLs this process inside the `count`-th epoch checkpoint it writes: halfway through
    the weights file (`weights`), or after the file is in place but before the switch to it
    (`switch`)."""
    import signal

    from keras_lottery import io_utils
    from keras_lottery.search import checkpoints

    atomic_write, write_json = io_utils.atomic_write, io_utils.write_json
    seen = {"weights": 0, "switch": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def cut_short(path, write_fn, suffix=""):
        if os.path.basename(path).startswith("epoch_"):
            seen["weights"] += 1
            if mode == "weights" and seen["weights"] == count:
                def half(tmp_path):
                    write_fn(tmp_path)
                    with open(tmp_path, "r+b") as handle:
                        handle.truncate(os.path.getsize(tmp_path) // 2)
                    die()
                return atomic_write(path, half, suffix)
        return atomic_write(path, write_fn, suffix)

    def before_switch(path, data):
        if os.path.basename(path) == checkpoints.LATEST:
            seen["switch"] += 1
            if mode == "switch" and seen["switch"] == count:
                die()
        return write_json(path, data)

    checkpoints.io_utils = type("io", (), {"atomic_write": staticmethod(cut_short),
                                           "write_json": staticmethod(before_switch),
                                           "remove_path": staticmethod(io_utils.remove_path)})


if __name__ == "__main__":
    if os.environ.get("KILL_IN_CHECKPOINT"):  # e.g. "weights:3"
        mode, count = os.environ["KILL_IN_CHECKPOINT"].split(":")
        kill_inside_checkpoint_writes(mode, int(count))
    search.run(config(sys.argv[1], sys.argv[2]), callbacks=[Announce()])
    print("DONE", flush=True)
