"""The deployment figure: ticket accuracy against what it buys at deployment, one curve per
setting (method and granularity) through its rounds, mean and spread over seeds.

Left: accuracy against the measured speedup over the dense network (Keras at batch 256,
TFLite at batch 1); right: against the size of the `.tflite` file (a fraction of the dense
network's). Settings without `deployment` records (runs written before it) are left out.
"""

import matplotlib.pyplot as plt
import numpy as np

from keras_lottery.report.figures_common import colours, curve, errorbars, label, legend


def accuracy_vs_speed(settings):
    settings = [s for s in settings if not np.all(np.isnan(curve(s, "speedup_keras_256")[0]))]
    if not settings:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    panels = (("speedup_keras_256", "speedup over dense, Keras, batch 256 (x)"),
              ("speedup_tflite_1", "speedup over dense, TFLite, batch 1 (x)"),
              ("tflite_size", ".tflite size (fraction of the dense file)"))
    for axis, (key, xlabel) in zip(axes, panels):
        for setting, colour in zip(settings, colours(len(settings))):
            errorbars(axis, curve(setting, key), colour, label(setting))
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    axes[2].set_xscale("log")
    axes[0].set_ylabel("ticket test accuracy (%)")
    figure.suptitle("What a ticket buys at deployment (mean ± spread over seeds)")
    legend(axes[2])
    return figure
