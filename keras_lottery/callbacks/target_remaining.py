"""`TargetRemaining`: CS rounds whose tickets keep an exact fraction of the weights."""

import numpy as np

from keras_lottery.callbacks.clock import RoundClock
from keras_lottery.layers import masked_layers
from keras_lottery.layers.mask_rules import removed

#: How far from 0 `project` puts logits that were tied at the threshold (kept: +, dropped: -).
TIE_MARGIN = 1e-6


def round_targets(target, rounds):
    """Remaining fraction each round aims at: `target ** (r / rounds)` for r = 1..rounds.

    Each round keeps the same share of the weights the previous round left,
    as in IMP's fixed pruning rate, and the last round lands on `target`.
    """
    return [float(target) ** (r / rounds) for r in range(1, rounds + 1)]


class TargetRemaining(RoundClock):
    """Makes the round's ticket keep exactly `target` of the maskable weights.

    CS keeps the weights whose logit ends above 0, so a constraint on the
    ticket's size is a constraint on where the logits `s` sit relative to 0.
    From `start` (a fraction of the round's steps) on, every `update_every`
    steps and after the last step, the callback finds the threshold `q` above
    which `target` of all masked logits lie (a global quantile, as CS's own
    threshold is global) and shifts every `s` by `-q`. The shift is the exact
    projection onto the constraint `remaining(b(s)) = target` along the
    direction that leaves the ranking of the logits, and so CS's choice of
    weights, untouched; `lambda` keeps its value. Before `start` the round runs
    as plain CS, so the logits first separate under the task loss and the
    penalty; afterwards the soft mask `sigmoid(beta*s)` the network trains
    with agrees with the ticket it will yield.

    Args:
        target: wanted remaining fraction at the end of the round, in (0, 1).
        start: fraction of the round's steps before the first shift, in [0, 1].
        update_every: steps between shifts.
    """

    def __init__(self, target, start=0.5, update_every=20):
        super().__init__()
        if not 0 < target < 1:
            raise ValueError(f"target remaining must be a fraction in (0, 1), got {target!r}.")
        if not 0 <= start <= 1:
            raise ValueError(f"start must be a fraction of the round in [0, 1], got {start!r}.")
        self.target = float(target)
        self.start = float(start)
        self.update_every = max(1, int(update_every))
        self.history = []

    def on_train_begin(self, logs=None):
        masked_layers(self.model, required_by="TargetRemaining")
        super().on_train_begin(logs)

    def on_train_batch_end(self, batch, logs=None):
        due = self._tick(batch, self.update_every)
        last = self._total and self._step >= self._total
        if self._step < self.start * self._total or not (due or last):
            return
        self.project()

    def project(self):
        """Shifts every live `s` so that `target` of all weights are kept (> 0); returns the
        shift.

        Removed weights (`s` at `REMOVED_LOGIT`, by ISS or IMP) stay removed and count as
        not kept. Logits tied at the threshold are ranked by `|w|` (a group's: the root mean
        square of its weights; larger kept), then by position (earlier kept), and land
        `TIE_MARGIN` above or below 0, so the ticket holds `round(target * weights)` weights
        however many logits tie (with groups of weights: as many whole groups as fit).
        """
        layers = masked_layers(self.model)
        logits = [np.asarray(layer.mask_logits.numpy()) for layer in layers]
        flat = np.concatenate([values.ravel() for values in logits])
        sizes = np.concatenate([np.full(values.size, layer.group_size)
                                for layer, values in zip(layers, logits)])
        alive = np.flatnonzero(~removed(flat))
        magnitude = np.concatenate([layer.group_rms().ravel() for layer in layers])[alive]
        # Largest s first, then largest |w|, then the earliest position.
        order = np.lexsort((alive, -magnitude, -flat[alive]))
        wanted = int(round(self.target * sizes.sum()))
        keep = int(np.searchsorted(np.cumsum(sizes[alive[order]]), wanted, side="right"))
        if keep <= 0 or keep >= alive.size:
            return 0.0
        lowest_kept, highest_dropped = flat[alive[order[keep - 1]]], flat[alive[order[keep]]]
        shifted = flat.copy()
        if lowest_kept > highest_dropped:
            threshold = 0.5 * (float(lowest_kept) + float(highest_dropped))
            shifted[alive] -= threshold
        else:  # a tie at the threshold: break it by the order above
            threshold = float(lowest_kept)
            shifted[alive] -= threshold
            tied = alive[flat[alive] == lowest_kept]
            kept = set(alive[order[:keep]].tolist())
            shifted[tied] = [TIE_MARGIN if i in kept else -TIE_MARGIN for i in tied.tolist()]
        start = 0
        for layer, values in zip(layers, logits):
            part = shifted[start:start + values.size].reshape(values.shape)
            layer.mask_logits.assign(part.astype("float32"))
            start += values.size
        self.history.append((self._step, threshold))
        return threshold

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.history:
            logs["target_shift"] = self.history[-1][1]
