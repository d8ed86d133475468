"""`kept_per_layer.png`: which layers each setting's last ticket keeps, side by side.

One horizontal bar per layer (its key: `block0_attention/query`, `fc1`, ...) and per setting,
the mean over seeds of the last round's remaining fraction with its spread, in the model's
order, on a log axis: for a transformer it shows at a glance whether a method keeps attention
or feed-forward weights, block by block.
"""

import numpy as np

from keras_lottery.report.figures_common import colours, label, plt


def _last_round_fractions(setting):
    """`{layer key: [remaining of the last round, one per seed]}` in the model's order."""
    found = {}
    for _, results in setting.runs:
        rounds = results.get("rounds") or []
        for name, value in (rounds[-1].get("remaining_per_layer", {}) if rounds else {}).items():
            found.setdefault(name, []).append(100 * value)
    return found


def kept_per_layer(settings):
    """The bars (None without per-layer records)."""
    per_setting = [(setting, _last_round_fractions(setting)) for setting in settings]
    names = []
    for _, fractions in per_setting:
        names += [name for name in fractions if name not in names]
    if not names:
        return None
    height = 0.8 / len(per_setting)
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.32 * len(names) * max(1, len(settings) / 2)))
    for index, ((setting, fractions), colour) in enumerate(zip(per_setting,
                                                               colours(len(per_setting)))):
        rows = np.arange(len(names)) + index * height
        values = [fractions.get(name, []) for name in names]
        means = [max(np.mean(v), 1e-3) if v else np.nan for v in values]
        spreads = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]
        rounds = len(setting.runs[0][1]["rounds"]) if setting.runs else 0
        axis.barh(rows, means, height=height, xerr=spreads, color=colour, capsize=2,
                  label=f"{label(setting)}, round {rounds}")
    axis.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names, fontsize=7)
    axis.invert_yaxis()  # input at the top
    axis.set_xscale("log")
    axis.set_xlabel("weights kept by the last ticket (%), mean and spread over seeds; "
                    "a layer with none kept is drawn at 0.001", fontsize=8)
    axis.set_title("Which layers the tickets keep")
    axis.grid(alpha=0.3, axis="x")
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.tight_layout()
    return figure
