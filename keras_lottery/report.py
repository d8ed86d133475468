"""Figures and tables from `results.json` files of any method (matplotlib, Markdown, TensorBoard).

- `accuracy_vs_remaining.png`: ticket test accuracy against the percentage of
  weights remaining (log scale), one curve per run, the best-per-sparsity
  envelope of each method, and the dense baseline (paper Fig. 3).
- `search_cost.png`: ticket accuracy against cumulative search epochs.
- `remaining_per_layer.png`: remaining fraction of every layer after each round.
- `supermask.png`: for supermask runs, mask accuracy against sparsity (Fig. 2).
- `results.md`: one Markdown table row per round.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import io_utils  # noqa: E402


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
        runs.append((os.path.normpath(os.path.dirname(path)), results))
    if not runs:
        raise ReportError("no run directories given.")
    return list(zip(_short_labels([directory for directory, _ in runs]),
                    [results for _, results in runs]))


def _short_labels(directories):
    """The shortest path tails that tell the runs apart (`trial_3/run`, not `run` twice)."""
    parts = [directory.split(os.sep) for directory in directories]
    depths = [1] * len(parts)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depths)]
        clashes = [i for i, label in enumerate(labels)
                   if labels.count(label) > 1 and depths[i] < len(parts[i])]
        if not clashes:
            return labels
        for i in clashes:
            depths[i] += 1


def _points(results, key="ticket_accuracy"):
    return [(r["remaining"], r[key], r["epochs"]) for r in results["rounds"]
            if r.get(key) is not None]


def pareto_envelope(points):
    """Best accuracy at each sparsity: the points no sparser-and-better point dominates.

    `points` are `(remaining, accuracy)`; returns them sorted by remaining.
    """
    front, best = [], -np.inf
    for remaining, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append((remaining, accuracy))
            best = accuracy
    return front


def table_rows(runs):
    """One row per round of every run: the numbers the figures plot."""
    rows = []
    for label, results in runs:
        for record in results["rounds"]:
            rows.append({
                "run": label, "method": record["method"] + (" (supermask)" if record.get(
                    "supermask") else ""),
                "round": record["round"], "remaining_percent": 100 * record["remaining"],
                "ticket_accuracy": record.get("ticket_accuracy"),
                "search_accuracy": record.get("search_accuracy"), "epochs": record["epochs"]})
    return rows


def markdown_table(runs):
    lines = ["| run | method | round | remaining (%) | ticket accuracy | search accuracy | "
             "search epochs |", "|---|---|---|---|---|---|---|"]
    for row in table_rows(runs):
        ticket = "-" if row["ticket_accuracy"] is None else f"{100 * row['ticket_accuracy']:.2f}"
        search = "-" if row["search_accuracy"] is None else f"{100 * row['search_accuracy']:.2f}"
        lines.append(f"| {row['run']} | {row['method']} | {row['round']} | "
                     f"{row['remaining_percent']:.2f} | {ticket} | {search} | {row['epochs']} |")
    for label, results in runs:
        dense = results.get("dense")
        if dense:
            lines.append(f"| {label} | dense | - | 100.00 | {100 * dense['test_accuracy']:.2f} | - "
                         f"| {dense['epochs']} |")
    return "\n".join(lines) + "\n"


def _finish(figure, axis, ylabel, title, **legend_options):
    """Labels, title, grid and legend shared by every figure."""
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(**legend_options)
    return figure


def _percent_axis(axis):
    axis.set_xscale("log")
    axis.invert_xaxis()
    axis.set_xlabel("weights remaining (%)")
    axis.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(
        [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]))
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def figure_accuracy_vs_remaining(runs):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    by_method = {}
    for label, results in runs:
        points = [(100 * r, 100 * a) for r, a, _ in _points(results)
                  if not results["flags"].get("supermask")]
        if not points:
            continue
        by_method.setdefault(results["flags"]["method"], []).extend(points)
        axis.plot(*zip(*points), marker="o", alpha=0.5, label=label)
        dense = results.get("dense")
        if dense:
            axis.axhline(100 * dense["test_accuracy"], color="grey", linestyle=":", linewidth=1)
    for method, points in sorted(by_method.items()):
        front = pareto_envelope(points)
        axis.plot(*zip(*front), linewidth=2.5, marker="D", label=f"{method}: best per sparsity")
    _percent_axis(axis)
    return _finish(figure, axis, "ticket test accuracy (%)", "Tickets: accuracy against sparsity",
                   fontsize=8)


def figure_search_cost(runs):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, results in runs:
        points = [(epochs, 100 * accuracy) for _, accuracy, epochs in _points(results)]
        if points:
            axis.plot(*zip(*points), marker="o", label=label)
    axis.set_xlabel("cumulative search epochs")
    return _finish(figure, axis, "ticket test accuracy (%)", "Search cost", fontsize=8)


def figure_remaining_per_layer(runs):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, results in runs:
        layers = sorted({name for r in results["rounds"] for name in r.get(
            "remaining_per_layer", {})})
        for name in layers:
            rounds = [r["round"] for r in results["rounds"]]
            values = [100 * r["remaining_per_layer"].get(name, np.nan) for r in results["rounds"]]
            axis.plot(rounds, values, marker=".", label=f"{label}: {name}")
    axis.set_yscale("log")
    axis.set_xlabel("round")
    return _finish(figure, axis, "weights remaining (%)", "Remaining weights per layer",
                   fontsize=6, ncol=2)


def figure_supermask(runs):
    points = {}
    for _, results in runs:
        if results["flags"].get("supermask"):
            method = results["flags"]["method"]
            points.setdefault(method, []).extend(
                (100 * (1 - r), 100 * a) for r, a, _ in _points(results))
    if not points:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method, values in sorted(points.items()):
        name = {"iss": "SS", "cs": "CS"}.get(method, method)
        axis.scatter(*zip(*sorted(values)), label=name)
    axis.set_xlabel("sparsity (%)")
    return _finish(figure, axis, "mask test accuracy (%)", "Supermasks on frozen weights")


FIGURES = {
    "accuracy_vs_remaining": figure_accuracy_vs_remaining,
    "search_cost": figure_search_cost,
    "remaining_per_layer": figure_remaining_per_layer,
    "supermask": figure_supermask,
}


def write_report(run_dirs, out_dir, tensorboard=True):
    """Writes the figures (PNG), `results.md` and, if asked, TensorBoard images; returns paths."""
    runs = load_runs(run_dirs)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    images = {}
    for name, make in FIGURES.items():
        figure = make(runs)
        if figure is None:
            continue
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
