"""`write_report`: figures and tables from the `results.json` of searches of any method.

Runs that differ only in `--seed` are one setting (`report.replicates`): the
table and the figures (`report.figures`) show each setting's mean
over its seeds and the spread (sample standard deviation).

- `accuracy_vs_remaining.png`: ticket test accuracy against the percentage of
  weights remaining, with error bars, each method's best-per-sparsity envelope
  over setting means, and the dense baselines (paper Fig. 3).
- `search_cost.png`: ticket accuracy against cumulative search epochs.
- `remaining_per_layer_<setting>.png`: every layer's remaining fraction, one
  figure per setting.
- `kept_per_layer.png`: each setting's last ticket, layer by layer, side by side.
- `deployment.png`: accuracy against measured speedup and file size (runs with
  `deployment` records).
- `supermask.png`: for supermask runs, mask accuracy against sparsity (Fig. 2).
- `results.md`: one row per setting and round (mean ± spread), then one row
  per run and round.
"""

import json
import os

import matplotlib.pyplot as plt
import tensorflow as tf

from keras_lottery import io_utils
from keras_lottery.report import figures, replicates
from keras_lottery.report.tables import markdown_table


class ReportError(ValueError):
    """A run directory without a readable results.json."""


def load_runs(run_dirs):
    """Reads `results.json` of each run directory: a list of `(label, results)`."""
    runs = []
    for run_dir in run_dirs:
        path = run_dir if run_dir.endswith(".json") else os.path.join(run_dir, "results.json")
        try:
            with open(path) as handle:
                results = json.load(handle)
            results["rounds"]  # noqa: B018 - checks the shape
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ReportError(f"{path} is not a keras_lottery results.json ({error}).") from None
        results["run_dir"] = os.path.abspath(os.path.dirname(path))
        runs.append((os.path.normpath(os.path.dirname(path)), results))
    if not runs:
        raise ReportError("no run directories given.")
    return list(zip(replicates.short_labels([directory for directory, _ in runs]),
                    [results for _, results in runs]))


def write_report(run_dirs, out_dir, tensorboard=True):
    """Writes the figures (PNG), `results.md` and, if asked, TensorBoard images; returns paths."""
    runs = load_runs(run_dirs)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    images = {}
    for name, figure in figures.all_figures(replicates.group_runs(runs)).items():
        path = os.path.join(out_dir, f"{name}.png")
        io_utils.atomic_write(path, lambda tmp, f=figure: f.savefig(tmp, dpi=120,
                                                                    bbox_inches="tight",
                                                                    format="png"), suffix=".png")
        plt.close(figure)
        written.append(path)
        with open(path, "rb") as handle:
            images[name] = handle.read()
    table = os.path.join(out_dir, "results.md")
    io_utils.atomic_write(table, lambda tmp: open(tmp, "w").write(markdown_table(runs)),
                          suffix=".md")
    written.append(table)
    if tensorboard:
        writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))
        with writer.as_default(step=0):
            for name, png in images.items():
                tf.summary.image(name, tf.expand_dims(tf.io.decode_png(png, channels=4), 0))
        writer.close()
    return written
