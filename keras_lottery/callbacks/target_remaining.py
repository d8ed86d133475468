"""`TargetRemaining`: CS rounds whose tickets keep an exact fraction of the weights."""

import numpy as np

from keras_lottery.callbacks.clock import RoundClock
from keras_lottery.layers import masked_layers
from keras_lottery.layers.mask_rules import removed
from keras_lottery.tickets import cuts


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
        self._attach_state()
        self.project()

    def project(self):
        """Shifts every live `s` so that `target` of all weights are kept (> 0); returns the
        shift.

        Removed weights (`s` at `REMOVED_LOGIT`, by ISS or IMP) stay removed and count as
        not kept. Logits tied at the threshold are ranked by `|w|` (a group's: the root mean
        square of its weights; larger kept), then by position (earlier kept), and land
        `cuts.TIE_MARGIN` above or below 0, so the ticket holds `round(target * weights)` weights
        however many logits tie (with groups of weights: as many whole groups as fit).
        """
        layers = masked_layers(self.model)
        flat = cuts.flat_logits(layers)
        sizes = np.concatenate([np.full(int(np.prod(layer.mask_logits.shape)), layer.group_size)
                                for layer in layers])
        alive = np.flatnonzero(~removed(flat))
        order = cuts.rank(layers, alive, flat)
        wanted = int(round(self.target * sizes.sum()))
        keep = int(np.searchsorted(np.cumsum(sizes[order]), wanted, side="right"))
        if keep <= 0 or keep >= alive.size:
            return 0.0
        shifted, threshold = cuts.shift_to_keep(flat, order, keep)
        cuts.assign(layers, shifted)
        self.history.append((self._step, threshold))
        return threshold

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.history:
            logs["target_shift"] = self.history[-1][1]
