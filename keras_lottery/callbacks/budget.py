"""`Budget`: a CS (or ISS) round whose ticket deploys within a budget (`tickets.budgets`)."""

import math

from keras_lottery.callbacks.clock import RoundClock
from keras_lottery.tickets.budgets import (
    budget_multiplier,
    check_floor,
    check_fraction,
    cut_learned,
    soft_cost,
)
from keras_lottery.tickets.deployed_cost import DeployedCost, check_kind


class Budget(RoundClock):
    """Makes the ticket of a CS (or ISS) round deploy within `target` of the dense cost.

    During the round, every `update_every` steps from `start` (a fraction of the round's
    steps; more often in a short round, so that `mu` moves at least `min_updates` times), it
    counts what the current ticket (`s > 0`) would deploy at and multiplies every
    layer's `lambda` by `mu`, a Lagrange-style multiplier updated in log space:
    `log mu += rate * clip(log(cost / target), -1, 1)`: over budget, the penalty presses
    harder; under it, it eases. `mu` lives in the layers' `penalty_weight` (their configured
    `mask_penalty` times `mu`), so checkpoints and the next round keep it. After the last
    step the ticket is cut onto the budget (`cut_learned`): it lands in `[0.9 F, F]` unless a
    single group costs more than a tenth of `F`.

    Args:
        target: `F`, the fraction of the dense network's cost, in (0, 1].
        kind: `"macs"` (multiply-accumulates per example) or `"parameters"`.
        min_units: groups every unit layer keeps whatever they cost.
        min_fraction: the share of each unit layer's groups it keeps at least (0: none), so
            that no layer becomes a bottleneck.
        unit_multiple: every unit layer keeps a multiple of this many units (or all of
            them); 8 gives the widths a width multiplier's network has (1: any count).
        update_every: steps between updates of `mu` (at most).
        min_updates: the updates of `mu` a round has at least: in a round whose steering
            window (`(1 - start)` of its steps) is shorter than `min_updates * update_every`,
            `mu` is updated every `window // min_updates` steps (at least every step), so
            how far it can move does not depend on the round's length.
        rate: the step of `log mu` per update (0: no steering, only the cut).
        start: fraction of the round trained before `mu` moves (default half: after a reset
            every kept `s` restarts at `s0` and the ticket says little until the logits
            separate, see the guide's "Target sparsity").
    """

    def __init__(self, target, kind="macs", min_units=1, update_every=20, rate=0.05,
                 start=0.5, min_fraction=0.0, min_updates=50, unit_multiple=1):
        super().__init__()
        self.target = check_fraction(target)
        check_kind(kind)
        check_floor(int(min_units), min_fraction, unit_multiple)
        self.kind, self.min_units, self.min_fraction = kind, int(min_units), float(min_fraction)
        self.unit_multiple = unit_multiple
        self.update_every, self.rate, self.start = max(1, int(update_every)), float(rate), start
        self.min_updates = max(1, int(min_updates))
        self._every = self.update_every
        self.cost, self.achieved, self.history = None, None, []

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        window = int((1 - self.start) * self._total)
        self._every = max(1, min(self.update_every, window // self.min_updates)) if window \
            else self.update_every
        if self.cost is None or self.cost.model is not self.model:
            self.cost = DeployedCost(self.model, self.kind)
        layers = self.cost.layers
        if any(layer.mask_rule == "fixed" for layer in layers):
            raise ValueError("Budget steers a learned mask (CS, ISS); pruning methods prune to "
                             "a budget at round end: RoundManager(budget=BudgetTarget(...)).")
        if not any(layer.mask_penalty > 0 for layer in layers):
            raise ValueError("Budget steers lambda, and every masked layer has mask_penalty 0; "
                             "give a mask_penalty > 0.")

    @property
    def multiplier(self):
        """`mu`: the layers' `lambda` now over their configured `mask_penalty`."""
        return budget_multiplier(self.cost.layers)

    def _steer(self):
        fraction = self.cost.fraction()
        ratio = math.log(max(fraction, 1e-6) / self.target)
        mu = self.multiplier * math.exp(self.rate * max(-1.0, min(1.0, ratio)))
        for layer in self.cost.layers:
            layer.penalty_weight.assign(layer.mask_penalty * mu)
        self.history.append((self._step, fraction, mu))

    def on_train_batch_end(self, batch, logs=None):
        due = self._tick(batch, self._every)
        if self._total and self._step >= self._total:
            self._attach_state()
            self.achieved = cut_learned(self.cost, self.target, self.min_units,
                                        self.min_fraction, self.unit_multiple)
        elif self.rate and due and self._step >= self.start * self._total:
            self._attach_state()
            self._steer()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.cost is None:
            return
        logs["budget_multiplier"] = self.multiplier
        logs["budget_cost"] = self.achieved if self.achieved is not None else (
            self.history[-1][1] if self.history else self.cost.fraction())
        logs["budget_soft_cost"] = soft_cost(self.cost)
