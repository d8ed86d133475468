"""The end of a round, one function for every method and every training loop.

`end_round(model, method, ...)` is the round's last step, in this order:
1. the ticket is read: `b(s_T)` for CS and ISS, before their reset; for IMP
   after pruning (`Method.ticket_after_round_end`);
2. the method's round-end step (`Method.round_end`): CS `s <- min(beta_T s_T, s0)`
   and `beta <- beta_0`; ISS `s <- -inf` where `s_T < s0`; IMP magnitude pruning;
3. the optional rewind `w <- w_k`;
4. the optimizer's state is zeroed (a new round starts like a new run).

`RoundManager` calls it when `fit` ends; the lottery runner calls it after it has
evaluated the round; a custom training loop calls it after its last step.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lottery.layers import masked_layers
from keras_lottery.methods import ContinuousSparsification
from keras_lottery.tickets import masks as masks_lib
from keras_lottery.tickets import snapshots
from keras_lottery.tickets.budgets import prune_to_budget
from keras_lottery.tickets.deployed_cost import DeployedCost


def end_round(model, method, rewind_weights=None, optimizer=None, budget=None):
    """Ends a round of `method` on `model`; returns the round's ticket `{layer: bool mask}`.

    Args:
        model: the searched model (its masked layers are reset in place).
        method: the `keras_lottery.methods.Method` that searched.
        rewind_weights: a `tickets.snapshots.snapshot` to rewind `w` to, or None.
        optimizer: an optimizer whose state to zero (`reset_optimizer_state`), or None.
        budget: `(DeployedCost, target fraction, BudgetTarget)` for a pruning
            method: it prunes to the budget (`tickets.budgets.prune_to_budget`) instead of
            by its rate.
    """
    layers = masked_layers(model, required_by="end_round")
    ticket = None if method.ticket_after_round_end else masks_lib.extract_masks(model)
    if budget is not None:
        cost, target, settings = budget
        prune_to_budget(cost, target, method, **settings.floor)
    else:
        method.round_end(layers)
    if ticket is None:
        ticket = masks_lib.extract_masks(model)
    if rewind_weights is not None:
        snapshots.restore(model, rewind_weights)
    if optimizer is not None:
        reset_optimizer_state(optimizer)
    return ticket


class RoundManager(keras.callbacks.Callback):
    """Snapshots `w_k`, records each round's ticket and runs the method's round-end step.

    Every `fit` call with this callback is one round. In the first round the
    callback copies all non-mask weights (kernels, biases, batch-norm
    statistics) after `rewind_epoch` epochs (`0` is `w_0`, before any update)
    and after `ticket_epoch` epochs (the weights tickets are retrained from).
    At the end of each round it runs `end_round` (the ticket into `tickets`, the
    method's round-end step, the rewind `w <- w_k` if `rewind_epoch` is set).

    Args:
        rewind_epoch: `k` for rewinding between rounds, or None for no rewinding.
        ticket_epoch: epoch of the weights kept for ticket retraining (default 0: `w_0`).
        method: a `keras_lottery.methods.Method` (default: CS with `beta_0 = 1`).
        reset_optimizer: zero the optimizer's state (and step count) at round end.
        on_snapshot: called as `on_snapshot(epoch, weights)` when a snapshot is taken.
        end_on_train_end: run the round-end step when `fit` ends (default). The
            lottery runner turns it off to evaluate the round first, then calls
            `end_round()` itself.
        budget: a `tickets.budgets.BudgetTarget` for a pruning method (IMP, random): round
            r prunes to the budget's round-r fraction instead of by its rate, and
            `budget_achieved` holds what the ticket deploys at. A method that learns its
            mask (CS, ISS) is steered by the `Budget` callback instead.
    """

    def __init__(self, rewind_epoch=None, ticket_epoch=0, method=None, reset_optimizer=True,
                 on_snapshot=None, end_on_train_end=True, budget=None):
        super().__init__()
        for name, value in (("rewind_epoch", rewind_epoch), ("ticket_epoch", ticket_epoch)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}.")
        self.rewind_epoch = rewind_epoch
        self.ticket_epoch = ticket_epoch
        self.method = method if method is not None else ContinuousSparsification()
        self.reset_optimizer = reset_optimizer
        self.on_snapshot = on_snapshot
        self.end_on_train_end = end_on_train_end
        if budget is not None and not self.method.ticket_after_round_end:
            raise ValueError(f"RoundManager(budget=...) prunes to a budget; method "
                             f"{self.method.name!r} learns its mask: add the Budget callback "
                             "to its rounds instead.")
        self.budget, self.budget_achieved, self._cost = budget, None, None
        self._first_epoch = True
        self.round = 0
        self.tickets = []
        self.snapshots = {}

    def restore_state(self, finished_rounds, snapshots, tickets=()):
        """Continues after `finished_rounds` rounds with the given snapshots (for resuming)."""
        self.round = int(finished_rounds)
        self.snapshots = dict(snapshots)
        self.tickets = list(tickets)

    def _take_snapshot(self, epoch):
        if epoch in self.snapshots:
            return
        self.snapshots[epoch] = snapshots.snapshot(self.model)
        if self.on_snapshot is not None:
            self.on_snapshot(epoch, self.snapshots[epoch])

    @property
    def rewind_weights(self):
        """The snapshot `w_k` used for rewinding (None when not rewinding)."""
        return None if self.rewind_epoch is None else self.snapshots.get(self.rewind_epoch)

    @property
    def ticket_weights(self):
        """The snapshot tickets are retrained from (`w_0` by default)."""
        return self.snapshots.get(self.ticket_epoch)

    def snapshot_epochs(self):
        """The epochs of the first round whose weights this manager keeps."""
        return {e for e in (self.rewind_epoch, self.ticket_epoch) if e is not None}

    def on_train_begin(self, logs=None):
        masked_layers(self.model, required_by="RoundManager")
        self._first_epoch = True
        if self.round == 0:
            epochs = self.params.get("epochs")
            for epoch in self.snapshot_epochs():
                if epochs is not None and epoch > epochs:
                    raise ValueError(
                        f"RoundManager: snapshot epoch {epoch} is past the end of the "
                        f"round ({epochs} epochs)."
                    )

    def on_epoch_begin(self, epoch, logs=None):
        # The weights before fit's first epoch are those after `epoch` epochs: w_0 on a
        # fresh start, w_k when a resumed fit starts at epoch k.
        if self._first_epoch and self.round == 0 and epoch in self.snapshot_epochs():
            self._take_snapshot(epoch)
        self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        if self.round == 0 and (epoch + 1) in self.snapshot_epochs():
            self._take_snapshot(epoch + 1)

    def on_train_end(self, logs=None):
        if not self.end_on_train_end:
            return
        self.end_round()

    def end_round(self):
        """The round-end step (`end_round`) with this manager's method and rewind point."""
        optimizer = getattr(self.model, "optimizer", None) if self.reset_optimizer else None
        budget = None
        if self.budget is not None:
            if self._cost is None or self._cost.model is not self.model:
                self._cost = DeployedCost(self.model, self.budget.kind)
            budget = (self._cost, self.budget.round_target(self.round + 1), self.budget)
        self.tickets.append(end_round(self.model, self.method, self.rewind_weights, optimizer,
                                      budget))
        if budget is not None:
            self.budget_achieved = self._cost.ticket_fraction(self.tickets[-1])
        self.round += 1
        return self.tickets[-1]


def reset_optimizer_state(optimizer):
    """Zeroes the optimizer's slots (momenta) and step count, keeping its learning rate.

    A fresh state per round restarts learning-rate schedules, as a new run would.
    """
    for variable in optimizer.variables:
        # Keep learning rates and the dynamic loss scale of mixed precision.
        if variable.name in ("learning_rate", "dynamic_scale"):
            continue
        variable.assign(tf.zeros(variable.shape, variable.dtype))
