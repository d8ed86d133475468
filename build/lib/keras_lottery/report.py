"""Figures and tables from `results.json` files of any method (matplotlib, Markdown, TensorBoard).

Runs that differ only in `--seed` are one setting (`keras_lottery.replicates`):
the table and the figures (`keras_lottery.figures`) show each setting's mean
over its seeds and the spread (sample standard deviation).

- `accuracy_vs_remaining.png`: ticket test accuracy against the percentage of
  weights remaining, with error bars, each method's best-per-sparsity envelope
  over setting means, and the dense baselines (paper Fig. 3).
- `search_cost.png`: ticket accuracy against cumulative search epochs.
- `remaining_per_layer_<setting>.png`: every layer's remaining fraction, one
  figure per setting.
- `supermask.png`: for supermask runs, mask accuracy against sparsity (Fig. 2).
- `results.md`: one row per setting and round (mean ± spread), then one row
  per run and round.
"""

import json
import os

import matplotlib.pyplot as plt

from keras_lottery import figures, io_utils, replicates
from keras_lottery.figures import pareto_envelope  # noqa: F401  (part of this module's API)


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


def table_rows(runs):
    """One row per round of every run: the numbers the figures plot."""
    rows = []
    for label, results in runs:
        for record in results["rounds"]:
            rows.append({
                "run": label, "method": _method_name(record["method"], record.get("supermask")),
                "round": record["round"], "remaining_percent": 100 * record["remaining"],
                "ticket_accuracy": record.get("ticket_accuracy"),
                "search_accuracy": record.get("search_accuracy"), "epochs": record["epochs"]})
    return rows


def _method_name(method, supermask):
    return method + (" (supermask)" if supermask else "")


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}"


def settings_table(settings):
    """Markdown: one row per setting and round, mean ± spread over the setting's seeds."""
    fmt = replicates.format_statistic
    lines = ["| setting | method | seeds | round | remaining (%) | ticket accuracy (%) | "
             "search accuracy (%) | search epochs |", "|---|---|---|---|---|---|---|---|"]
    for setting in settings:
        name = _method_name(setting.method, setting.supermask)
        for row in setting.round_statistics():
            lines.append(f"| {setting.label} | {name} | {row['seeds']} | {row['round']} | "
                         f"{fmt(row['remaining'])} | {fmt(row['ticket_accuracy'])} | "
                         f"{fmt(row['search_accuracy'])} | {fmt(row['epochs'], 1, 0)} |")
        dense = setting.dense_statistics()
        if dense:
            lines.append(f"| {setting.label} | dense | {dense['seeds']} | - | 100.00 | "
                         f"{fmt(dense['accuracy'])} | - | {dense['epochs']} |")
    return "\n".join(lines) + "\n"


def runs_table(runs):
    """Markdown: one row per round of every run."""
    lines = ["| run | method | round | remaining (%) | ticket accuracy | search accuracy | "
             "search epochs |", "|---|---|---|---|---|---|---|"]
    for row in table_rows(runs):
        lines.append(f"| {row['run']} | {row['method']} | {row['round']} | "
                     f"{row['remaining_percent']:.2f} | {_percent(row['ticket_accuracy'])} | "
                     f"{_percent(row['search_accuracy'])} | {row['epochs']} |")
    for label, results in runs:
        dense = results.get("dense")
        if dense:
            lines.append(f"| {label} | dense | - | 100.00 | {_percent(dense['test_accuracy'])} "
                         f"| - | {dense['epochs']} |")
    return "\n".join(lines) + "\n"


def markdown_table(runs):
    """`results.md`: the settings (mean ± sample standard deviation over seeds), then the runs."""
    return ("## Settings (mean ± sample standard deviation over seeds)\n\n"
            + settings_table(replicates.group_runs(runs)) + "\n## Runs\n\n" + runs_table(runs))


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
        import tensorflow as tf

        writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard"))
        with writer.as_default(step=0):
            for name, png in images.items():
                tf.summary.image(name, tf.expand_dims(tf.io.decode_png(png, channels=4), 0))
        writer.close()
    return written
