"""The deployment figures: ticket accuracy against what it buys at deployment, one curve per
setting (method and granularity) through its rounds, mean and spread over seeds, and against
the budget each round landed on.

Left: accuracy against the measured speedup over the dense network (Keras at batch 256,
TFLite at batch 1); right: against the size of the `.tflite` file (a fraction of the dense
network's). Settings without `deployment` records (runs written before it) are left out. A
language model's tickets are judged by their test loss in bits per character instead.
"""

import matplotlib.pyplot as plt
import numpy as np

from keras_lottery.report.figures_common import (
    colours,
    curve,
    errorbars,
    label,
    legend,
    ticket_quality,
)


def _keras_batch(settings):
    """The Keras batch the settings' speedups were measured at: 256, else 64."""
    for key in ("speedup_keras_256", "speedup_keras_64"):
        if any(not np.all(np.isnan(curve(s, key)[0])) for s in settings):
            return key
    return None


def accuracy_vs_speed(settings):
    keras_key = _keras_batch(settings)
    settings = [s for s in settings if keras_key and not np.all(np.isnan(curve(s, keras_key)[0]))]
    if not settings:
        return None
    quality, ylabel = ticket_quality(settings)
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    panels = ((keras_key, f"speedup over dense, Keras, batch {keras_key.rsplit('_', 1)[1]} (x)"),
              ("speedup_tflite_1", "speedup over dense, TFLite, batch 1 (x)"),
              ("tflite_size", ".tflite size (fraction of the dense file)"))
    for axis, (key, xlabel) in zip(axes, panels):
        for setting, colour in zip(settings, colours(len(settings))):
            errorbars(axis, curve(setting, key, quality), colour, label(setting))
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[2].set_xscale("log")
    axes[0].set_ylabel(ylabel)
    figure.suptitle("What a ticket buys at deployment (mean ± spread over seeds)")
    legend(axes[2])
    return figure


def accuracy_vs_budget(settings):
    """Ticket accuracy against the deployed cost each round landed on, for searches with a
    budget (`--target_macs`, `--target_parameters`); the dotted lines are the budgets."""
    settings = [s for s in settings if not np.all(np.isnan(curve(s, "budget_achieved")[0]))]
    if not settings:
        return None
    quality, ylabel = ticket_quality(settings)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    targets = set()
    for setting, colour in zip(settings, colours(len(settings))):
        errorbars(axis, curve(setting, "budget_achieved", quality), colour, label(setting))
        targets.update(float(t) for t in curve(setting, "budget_target")[0] if np.isfinite(t))
    for target in sorted(targets):
        axis.axvline(target, color="grey", linestyle=":", linewidth=1)
    kinds = sorted({s.flags.get("target_macs") and "MACs" or "parameters" for s in settings})
    axis.set_xscale("log")
    axis.set_xlabel(f"deployed {' / '.join(kinds)} (fraction of the dense network's)")
    axis.set_ylabel(ylabel)
    axis.set_title("Tickets to a budget (mean ± spread over seeds)")
    axis.grid(alpha=0.3)
    legend(axis)
    return figure
