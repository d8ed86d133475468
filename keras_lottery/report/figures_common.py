"""What the report's figures share: distinct colours, a setting's label and its per-round
curve (means and spreads over seeds), error bars, a legend that stays off the data."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def colours(count):
    """`count` distinct colours: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    if count <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(count)]
    if count <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(count)]
    return [plt.get_cmap("hsv")(i / count) for i in range(count)]


def label(setting):
    seeds = len(setting.runs)
    return setting.label + (f" ({seeds} seeds)" if seeds > 1 else "")


def curve(setting, x_key, y_key="ticket_accuracy"):
    """Rounds with a value: x means and spreads, y means and spreads (percent for fractions;
    bits per character as they are)."""
    rows = [row for row in setting.round_statistics() if row[y_key][0] is not None]
    x_scale = 100.0 if x_key == "remaining" else 1.0
    y_scale = 1.0 if y_key.endswith("bits_per_char") else 100.0

    def column(key, index, scale):
        return np.array([np.nan if row[key][index] is None else scale * row[key][index]
                         for row in rows], dtype=float)

    return (column(x_key, 0, x_scale), column(x_key, 1, x_scale),
            column(y_key, 0, y_scale), column(y_key, 1, y_scale))


def ticket_quality(settings):
    """`(y key, axis label)` of what a ticket is judged by: a language model's test loss in
    bits per character (lower is better) when every setting has one, else test accuracy."""
    if settings and all(any(row["ticket_bits_per_char"][0] is not None
                            for row in s.round_statistics()) for s in settings):
        return "ticket_bits_per_char", "ticket test loss (bits/char, lower is better)"
    return "ticket_accuracy", "ticket test accuracy (%)"


def errorbars(axis, curve, colour, name, **style):
    x, x_spread, y, y_spread = curve
    axis.errorbar(x, y, xerr=None if np.all(np.isnan(x_spread)) else x_spread,
                  yerr=None if np.all(np.isnan(y_spread)) else y_spread, marker="o",
                  capsize=3, color=colour, label=name, **style)


def legend(axis, **options):
    """The axis's legend, beside the plot when it has more than 8 entries."""
    if len(axis.get_legend_handles_labels()[1]) > 8:
        options = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), **options}
    axis.legend(**options)
