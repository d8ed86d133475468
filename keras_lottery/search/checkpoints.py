"""Training checkpoints that a kill cannot corrupt: write the new one, then switch.

Each phase of a run (a round's search, a ticket's retraining, the dense
baseline) keeps its checkpoints in a directory of its own:

    epoch_<e>.weights.h5   the model and its optimizer after `e` epochs
    epoch_<e>.logs.json    epoch e's Keras logs (kept for every epoch: the phase's history)
    latest.json            {"epoch": e, "file": "epoch_<e>.weights.h5"}: the switch

`save` writes the epoch's logs, then the weights to a temporary file and renames
it into place, then rewrites `latest.json` the same way, and only then deletes the previous
epoch's file. A process killed at any moment leaves `latest.json` naming a
complete file (or no `latest.json` at all), and `restore` falls back to the
previous complete file if the named one cannot be read. An epoch whose loss
is NaN is never saved, so a rerun after a divergence starts before it.
"""

import json
import math
import os
import re

import keras
from absl import logging

from keras_lottery import io_utils

LATEST = "latest.json"
_EPOCH_FILE = re.compile(r"^epoch_(\d+)\.weights\.h5$")
_LOGS_FILE = re.compile(r"^epoch_(\d+)\.logs\.json$")


def _epoch_files(directory, pattern=_EPOCH_FILE):
    """`{epoch: path}` of the files in `directory` whose names match `pattern` (by default
    the complete checkpoint files; `_LOGS_FILE`: the epochs' logs)."""
    if not os.path.isdir(directory):
        return {}
    found = {}
    for name in os.listdir(directory):
        match = pattern.match(name)
        if match:
            found[int(match.group(1))] = os.path.join(directory, name)
    return found


def exist(directory):
    """Whether `directory` holds a checkpoint to resume from."""
    return bool(_epoch_files(directory))


def write(model, path):
    """Saves `model` with its optimizer's state to `path` (`.weights.h5`), atomically."""
    io_utils.atomic_write(path, model.save_weights, suffix=".weights.h5")


def history(directory):
    """The phase's per-epoch logs, `[{"epoch": 1, "loss": ..., ...}, ...]`: those of the epochs
    that ran to their checkpoint (a resumed phase's rerun epochs replace their killed runs)."""
    entries = []
    for _epoch, path in sorted(_epoch_files(directory, _LOGS_FILE).items()):
        try:
            with open(path) as handle:
                entries.append(json.load(handle))
        except (OSError, ValueError):  # written atomically: only a foreign file fails here
            logging.warning("epoch logs %s are unreadable; left out of the history", path)
    return entries


def _epoch_logs(epoch, logs):
    values = {"epoch": epoch}
    for key, value in (logs or {}).items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            values[key] = value
    return values


def save(model, directory, epoch, logs=None):
    """Saves `model` (weights and optimizer state) as the checkpoint after `epoch` epochs,
    after the epoch's `logs` (its entry in `history`)."""
    io_utils.write_json(os.path.join(directory, f"epoch_{epoch}.logs.json"),
                        _epoch_logs(epoch, logs))
    name = f"epoch_{epoch}.weights.h5"
    write(model, os.path.join(directory, name))
    io_utils.write_json(os.path.join(directory, LATEST), {"epoch": epoch, "file": name})
    for other, path in _epoch_files(directory).items():
        if other != epoch:
            io_utils.remove_path(path)


def restore(model, directory):
    """Loads the newest readable checkpoint into `model`; returns its epoch (0: none).

    The optimizer must be built (`model.optimizer.build(...)`) so that its
    state loads too.
    """
    files = _epoch_files(directory)
    try:
        with open(os.path.join(directory, LATEST)) as handle:
            newest = int(json.load(handle)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        newest = None
    # The switch names the newest complete file; older complete files are fallbacks.
    candidates = sorted((e for e in files if newest is None or e <= newest), reverse=True)
    for epoch in candidates:
        try:
            model.load_weights(files[epoch])
            return epoch
        except Exception as error:  # a file cut short by a crash of the machine
            logging.warning("checkpoint %s is unreadable (%s); trying an older one",
                            files[epoch], error)
    return 0


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model after every epoch with `save`, unless the epoch's loss is not finite.

    List it after the callbacks that change the model at an epoch's end (the
    temperature's exact `beta_t`), so that the checkpoint holds what they set.
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        save(self.model, self.directory, epoch + 1, logs)
