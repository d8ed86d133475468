"""What a search writes to TensorBoard besides the callbacks' logs: scalars per round (the
`summary` run, a phase's test accuracy) and the search's HParams.

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

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api


class ScalarWriter:
    """Writes scalars into TensorBoard runs, one event file per run for the process's life
    (a new `create_file_writer` per point would start a new file each time)."""

    def __init__(self):
        self._writers = {}

    def write(self, log_dir, step, values):
        """Writes `{tag: value}` (None skipped) at `step` into run `log_dir`, and flushes."""
        writer = self._writers.get(log_dir)
        if writer is None:
            writer = self._writers[log_dir] = tf.summary.create_file_writer(log_dir)
        with writer.as_default(step=int(step)):
            for tag, value in values.items():
                if value is not None:
                    tf.summary.scalar(tag, float(value))
        writer.flush()

    def close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


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
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default(step=0):
        hparams_api.hparams(hparams_of(flags))
        rows = "\n".join(f"| `--{name}` | `{value}` |" for name, value in sorted(flags.items()))
        tf.summary.text("flags", "| flag | value |\n|---|---|\n" + rows)
    writer.close()
