"""One TensorBoard event file per run directory and per process.

`tf.summary.create_file_writer(log_dir)` starts a new event file each time it is called, so a
callback that makes its writer per `fit` (Keras's `TensorBoard`) leaves one file per round,
and a writer per point one file per point. Every summary of a search goes through `writer`,
which keeps one writer per directory for the life of the process.
"""

import os

import tensorflow as tf

_WRITERS = {}


def writer(log_dir):
    """The process's one `tf.summary` writer for run directory `log_dir`."""
    key = os.path.abspath(log_dir)
    if key not in _WRITERS:
        _WRITERS[key] = tf.summary.create_file_writer(key)
    return _WRITERS[key]


def close_all():
    """Closes every writer (a later `writer(d)` starts a new file in `d`)."""
    for file_writer in _WRITERS.values():
        file_writer.close()
    _WRITERS.clear()
