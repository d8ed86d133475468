"""The report's figures (matplotlib), one setting (its seeds' mean and spread) per curve.

- `accuracy_vs_remaining`: ticket test accuracy against the weights remaining
  (log scale), error bars over seeds, each method's best-per-sparsity envelope
  over setting means, and each setting's dense baseline (paper Fig. 3).
- `search_cost`: ticket accuracy against cumulative search epochs.
- `remaining_per_layer_<setting>`: every layer's remaining fraction after each
  round, one figure per setting.
- `kept_per_layer` (`layer_figures`): each setting's last ticket, layer by layer.
- `deployment` (`deployment_figures`): accuracy against measured speedup and file size.
- `supermask`: supermask accuracy against sparsity (paper Fig. 2, right).
- `training_curves`: the search's validation accuracy and weights remaining per epoch,
  rounds on one timeline, mean and spread band over seeds (paper Fig. 2, left).
- `rounds_across_s0`: for settings that differ only in s0, one curve per round across
  the s0 values (paper Fig. 3).

Colours never repeat within a figure: `colours(n)` gives `n` distinct ones.
"""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import methods  # noqa: E402
from keras_lottery.report import replicates  # noqa: E402
from keras_lottery.report.deployment_figures import (  # noqa: E402
    accuracy_vs_budget,
    accuracy_vs_speed,
)
from keras_lottery.report.figures_common import colours  # noqa: E402, F401  (the report's)
from keras_lottery.report.figures_common import curve as _curve  # noqa: E402
from keras_lottery.report.figures_common import errorbars as _errorbars  # noqa: E402
from keras_lottery.report.figures_common import label as _label  # noqa: E402
from keras_lottery.report.figures_common import legend as _legend  # noqa: E402
from keras_lottery.report.layer_figures import kept_per_layer  # noqa: E402
from keras_lottery.report.pareto import pareto_envelope  # noqa: E402
from keras_lottery.report.tables import method_title  # noqa: E402


def _finish(figure, axis, ylabel, title, **legend_options):
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    _legend(axis, **legend_options)
    return figure


def _percent_axis(axis):
    axis.set_xscale("log")
    axis.invert_xaxis()
    axis.set_xlabel("weights remaining (%)")
    axis.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(
        [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]))
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def accuracy_vs_remaining(settings):
    settings = [s for s in settings if not s.supermask and _curve(s, "remaining")[0].size]
    if not settings:
        return None
    names = sorted({s.method for s in settings})
    dense = [s for s in settings if s.dense_statistics()]
    palette = colours(len(settings) + len(names) + len(dense))
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    by_method = {}
    for setting, colour in zip(settings, palette):
        curve = _curve(setting, "remaining")
        _errorbars(axis, curve, colour, _label(setting), alpha=0.8)
        by_method.setdefault(setting.method, []).extend(zip(curve[0], curve[2]))
    for method, colour in zip(names, palette[len(settings):]):
        front = pareto_envelope(by_method[method])
        axis.plot(*zip(*front), linewidth=2.5, linestyle="--", color=colour,
                  label=f"{method}: best mean per sparsity")
    for setting, colour in zip(dense, palette[len(settings) + len(names):]):
        statistics = setting.dense_statistics()
        mean, spread = statistics["accuracy"]
        text = f"{100 * mean:.2f}" + (f" ± {100 * spread:.2f}" if spread is not None else "")
        axis.axhline(100 * mean, color=colour, linestyle=":", linewidth=1.2,
                     label=f"dense, {_label(setting)}: {text}")
    _percent_axis(axis)
    return _finish(figure, axis, "ticket test accuracy (%)", "Tickets: accuracy against sparsity",
                   fontsize=7)


def search_cost(settings):
    """Ticket accuracy against cumulative search epochs (supermasks, trained once, left out)."""
    settings = [s for s in settings if not s.supermask and _curve(s, "epochs")[0].size]
    if not settings:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for setting, colour in zip(settings, colours(len(settings))):
        _errorbars(axis, _curve(setting, "epochs"), colour, _label(setting))
    axis.set_xlabel("cumulative search epochs")
    return _finish(figure, axis, "ticket test accuracy (%)", "Search cost", fontsize=7)


def remaining_per_layer(setting):
    """One setting's layers: mean remaining after each round, coloured input to output."""
    names = []
    for _, results in setting.runs:
        for record in results["rounds"]:
            names += [n for n in record.get("remaining_per_layer", {}) if n not in names]
    if not names:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    many = len(names) > 12
    palette = ([plt.get_cmap("viridis")(i / max(1, len(names) - 1)) for i in range(len(names))]
               if many else colours(len(names)))
    for _index, (name, colour) in enumerate(zip(names, palette)):
        by_round = {}
        for _, results in setting.runs:
            for record in results["rounds"]:
                value = record.get("remaining_per_layer", {}).get(name)
                if value is not None:
                    by_round.setdefault(record["round"], []).append(100 * value)
        rounds = sorted(by_round)
        axis.plot(rounds, [np.mean(by_round[r]) for r in rounds], marker=".", color=colour,
                  label=None if many else name)
    axis.set_yscale("log")
    axis.set_xlabel("round")
    axis.set_ylabel("weights remaining (%)")
    axis.set_title(f"Remaining weights per layer: {_label(setting)}")
    axis.grid(alpha=0.3)
    if many:
        scale = matplotlib.cm.ScalarMappable(cmap="viridis",
                                             norm=matplotlib.colors.Normalize(1, len(names)))
        figure.colorbar(scale, ax=axis, label=f"layer, input (1) to output ({len(names)})")
    else:
        axis.legend(fontsize=7)
    return figure


def supermask(settings):
    """Paper Fig. 2 right: one curve per method through its settings' means, ordered by
    sparsity, error bars over seeds, each point marked with the knob that set its sparsity
    (CS: lambda; SS: s0)."""
    settings = [s for s in settings if s.supermask and _curve(s, "remaining")[0].size]
    if not settings:
        return None
    names = sorted({s.method for s in settings})
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for method, colour in zip(names, colours(len(names))):
        name = method_title(method, supermask=True)
        knob = methods.get(method).supermask_knob if method in methods.METHODS else (
            "mask_penalty")
        points = []
        for setting in (s for s in settings if s.method == method):
            x, x_spread, y, y_spread = (values[-1] for values in _curve(setting, "remaining"))
            points.append((100 - x, x_spread, y, y_spread, setting.flags.get(knob),
                           len(setting.runs)))
        points.sort(key=lambda point: point[0])
        x, x_spread, y, y_spread, values, seeds = zip(*points)
        seeds_text = f", {min(seeds)}-{max(seeds)} seeds" if min(seeds) != max(seeds) else (
            f", {seeds[0]} seeds" if seeds[0] > 1 else "")
        _errorbars(axis, tuple(np.array(v, dtype=float) for v in (x, x_spread, y, y_spread)),
                   colour, f"{name} ({'lambda' if knob == 'mask_penalty' else 's0'} marked"
                   f"{seeds_text})")
        for xi, yi, value in zip(x, y, values):
            axis.annotate(f"{value:g}" if value is not None else "", (xi, yi),
                          textcoords="offset points", xytext=(4, 4), fontsize=6, color=colour)
    axis.set_xlabel("sparsity (%)")
    return _finish(figure, axis, "mask test accuracy (%)",
                   "Supermasks on frozen weights: mean ± spread over seeds", fontsize=7)


def training_curves(settings):
    """Validation accuracy (top) and weights remaining (bottom) per search epoch; a band
    of one spread around each setting's mean. Settings without a recorded history are left
    out."""
    settings = [s for s in settings if s.epoch_statistics("val_accuracy")[0].size]
    if not settings:
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7.0), sharex=True)
    for setting, colour in zip(settings, colours(len(settings))):
        name = method_title(setting.method, setting.supermask)
        recorded = sum(all(r.get("history") for r in results["rounds"])
                       for _, results in setting.runs)
        label = (f"{name}: {_label(setting)}" if recorded == len(setting.runs) else
                 f"{name}: {setting.label} ({len(setting.runs)} seeds, {recorded} with "
                 "every round's history)")
        for axis, key in ((top, "val_accuracy"), (bottom, "remaining")):
            epochs, mean, spread = setting.epoch_statistics(key)
            if not epochs.size:
                continue
            axis.plot(epochs, 100 * mean, color=colour, label=label)
            if not np.all(np.isnan(spread)):
                axis.fill_between(epochs, 100 * (mean - spread), 100 * (mean + spread),
                                  color=colour, alpha=0.2, linewidth=0)
    bottom.set_yscale("log")
    bottom.set_xlabel("search epoch (rounds one after another)")
    bottom.set_ylabel("weights remaining (%)")
    bottom.grid(alpha=0.3)
    return _finish(figure, top, "validation accuracy (%)",
                   "Search: accuracy and sparsity per epoch, mean ± spread over seeds", fontsize=7)


def rounds_across(settings, knob="mask_init"):
    """The paper's Fig. 3 style: among settings that differ only in `knob` (s0 by default) and
    the seed, one curve per round through the rounds' means, ordered by sparsity."""
    families = {}
    for setting in settings:
        if setting.supermask or knob not in setting.flags:
            continue
        rest = {k: v for k, v in setting.flags.items() if k != knob}
        families.setdefault(replicates.setting_key(rest), []).append(setting)
    families = [members for members in families.values() if len(members) > 1]
    if not families:
        return None
    curves = []
    for members in families:
        rounds = sorted({row["round"] for s in members for row in s.round_statistics()})
        for number in rounds:
            points = []
            for setting in members:
                row = next((r for r in setting.round_statistics() if r["round"] == number), None)
                if row and row["ticket_accuracy"][0] is not None:
                    points.append((100 * row["remaining"][0], 100 * row["ticket_accuracy"][0],
                                   setting.flags[knob]))
            if len(points) > 1:
                curves.append((members[0].method, number, sorted(points)))
    if not curves:
        return None
    figure, axis = plt.subplots(figsize=(7.5, 4.8))
    for (method, number, points), colour in zip(curves, colours(len(curves))):
        x, y, values = zip(*points)
        axis.plot(x, y, marker="o", color=colour, label=f"{method}, round {number}")
        for xi, yi, value in zip(x, y, values):
            axis.annotate(f"{value:g}", (xi, yi), textcoords="offset points", xytext=(3, 3),
                          fontsize=6, color=colour)
    _percent_axis(axis)
    return _finish(figure, axis, "ticket test accuracy (%)",
                   f"One curve per round across {knob} (marked), means over seeds", fontsize=7)


def file_stem(label):
    """A file name part for a setting label (`ablation/ours` -> `ablation_ours`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def all_figures(settings):
    """`{file stem: figure}` of every figure the settings have data for."""
    figures = {"accuracy_vs_remaining": accuracy_vs_remaining(settings),
               "search_cost": search_cost(settings),
               "supermask": supermask(settings),
               "training_curves": training_curves(settings),
               "rounds_across_s0": rounds_across(settings),
               "deployment": accuracy_vs_speed(settings),
               "budgets": accuracy_vs_budget(settings),
               "kept_per_layer": kept_per_layer(settings)}
    for setting in settings:
        figures[f"remaining_per_layer_{file_stem(setting.label)}"] = remaining_per_layer(setting)
    return {name: figure for name, figure in figures.items() if figure is not None}
