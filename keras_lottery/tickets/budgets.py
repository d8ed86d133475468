"""Tickets to a budget: a ticket that deploys at a given fraction `F` of the dense network's
multiply-accumulates or parameters, counted as the deployment record counts them
(`tickets.deployed_cost`: the shrunk network for unit tickets, kept weights otherwise).

- `BudgetTarget`: a budget over a search (round r of R aims at `F ** (r / R)`);
- `cut_learned(cost, target)`: a learned mask (CS, ISS) cut onto the budget by one shift of
  its logits (the `Budget` callback steers `lambda` toward it during the round, then cuts);
- `prune_to_budget(cost, target, method)`: a pruning method (IMP, random) removes its
  lowest-scored groups until the ticket fits (`RoundManager(budget=...)` at round end).
Both keep the most groups that fit: the ticket lands in `[0.9 F, F]` unless one group costs
more than a tenth of `F`. Each unit layer keeps its best `min_units` groups, and at least
`min_fraction` of its groups, whatever they cost, so no layer is emptied or made a bottleneck;
with `unit_multiple=m` every unit layer keeps a multiple of `m` units (or all of them), as a
width multiplier's network does (the shapes accelerators ask for; on this project's CPUs m = 8
did not change the measured speed: REPRODUCTION.md section 12).
"""

import dataclasses
import math

import numpy as np

from keras_lottery.layers import REMOVED_LOGIT
from keras_lottery.layers.mask_rules import kept, removed
from keras_lottery.tickets import cuts
from keras_lottery.tickets.deployed_cost import BUDGET_KINDS, STRUCTURED, DeployedCost, check_kind


class BudgetError(ValueError):
    """A budget that cannot be met (below what the ticket must keep); one line."""


def check_fraction(fraction):
    """A one-line ValueError unless `0 < fraction <= 1`."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"a budget is a fraction of the dense network's cost in (0, 1], "
                         f"got {fraction!r}.")
    return float(fraction)


@dataclasses.dataclass(frozen=True)
class BudgetTarget:
    """A budget over a search: the last round's ticket deploys at `fraction` of the dense
    network's `kind`; round r of `rounds` aims at `fraction ** (r / rounds)` (a geometric
    path, as IMP's fixed rate). `min_units`: groups every unit layer keeps whatever they
    cost (a floor, so no layer is emptied); `min_fraction`: the share of each unit layer's
    groups it keeps at least (so no layer becomes a bottleneck); `unit_multiple`: every
    unit layer keeps a multiple of it (or all of its units)."""

    kind: str
    fraction: float
    rounds: int = 1
    min_units: int = 1
    min_fraction: float = 0.0
    unit_multiple: int = 1

    def __post_init__(self):
        check_kind(self.kind)
        check_fraction(self.fraction)
        check_floor(self.min_units, self.min_fraction, self.unit_multiple)

    @property
    def floor(self):
        """`min_units`, `min_fraction` and `unit_multiple` as the keyword arguments of
        `cut_learned`, `prune_to_budget`, `minimal_ticket` and the `Budget` callback."""
        return {"min_units": self.min_units, "min_fraction": self.min_fraction,
                "unit_multiple": self.unit_multiple}

    def round_target(self, round_index):
        """The fraction round `round_index` (1-based) lands on."""
        return self.fraction ** (min(round_index, self.rounds) / self.rounds)


def check_floor(min_units, min_fraction, unit_multiple=1):
    """One-line ValueErrors unless `min_units` is an integer >= 0, `0 <= min_fraction < 1`
    and `unit_multiple` is an integer >= 1."""
    if not (isinstance(min_units, int) and min_units >= 0):
        raise ValueError(f"min_units must be an integer >= 0, got {min_units!r}.")
    if not (isinstance(min_fraction, (int, float)) and 0 <= min_fraction < 1):
        raise ValueError(f"min_fraction must be a fraction in [0, 1), got {min_fraction!r}.")
    if not (isinstance(unit_multiple, int) and unit_multiple >= 1):
        raise ValueError(f"unit_multiple must be an integer >= 1, got {unit_multiple!r}.")


def _groups(layer):
    return int(np.prod(layer.mask_logits.shape))


def unit_sizes(layers, unit_multiple=1):
    """Per layer, the run of groups a cut keeps or drops together: `unit_multiple` for unit
    layers, 1 for the others (weights, blocks and heads)."""
    return [unit_multiple if layer.granularity.name == "unit" else 1 for layer in layers]


def unit_floors(layers, min_units=1, min_fraction=0.0, unit_multiple=1):
    """Per layer, the groups a cut keeps whatever they cost: `max(min_units,
    ceil(min_fraction * groups))` for unit and head layers (unit layers' rounded up to a
    multiple of `unit_multiple`, at most all of them), 0 for the others."""
    floors = []
    for layer, size in zip(layers, unit_sizes(layers, unit_multiple)):
        floor = 0
        if layer.granularity.name in STRUCTURED:
            floor = max(min_units, math.ceil(min_fraction * _groups(layer)))
            floor = min(_groups(layer), size * math.ceil(floor / size))
        floors.append(floor)
    return floors


def budget_multiplier(layers):
    """`mu`: the masked layers' `lambda` now (`penalty_weight`, as the `Budget` callback
    steered it) over their configured `mask_penalty`; 1 when no layer has a penalty."""
    for layer in layers:
        if layer.mask_penalty > 0:
            return float(layer.penalty_weight.numpy()) / layer.mask_penalty
    return 1.0


def minimal_ticket(cost, min_units=1, min_fraction=0.0, unit_multiple=1):
    """The cheapest ticket a cut can reach: every group it cannot remove, and the first
    `unit_floors` groups of every unit layer (group masks, one per layer)."""
    groups = []
    floors = unit_floors(cost.layers, min_units, min_fraction, unit_multiple)
    for removable, floor in zip(cost.removable, floors):
        mask = ~removable
        mask.reshape(-1)[np.flatnonzero(removable.reshape(-1))[:floor]] = True
        groups.append(mask)
    return groups


#: A cut whose longest fitting prefix lands below `LANDING` of the budget fills it with the
#: groups ranked after the prefix that still fit, trying at most `MAX_FILL` of them.
LANDING, MAX_FILL = 0.9, 4096


def _fixed(cost, flat):
    """The live groups a cut cannot remove (the classes, channels that reach a merge): a
    ticket keeps them (a network whose output units are cut computes a constant)."""
    removable = np.concatenate([r.ravel() for r in cost.removable])
    return np.flatnonzero(~removable & ~removed(flat))


def _plan_cut(cost, target, score, candidates, floor):
    """`(order, keep, chosen, groups)` of a cut within `target` of the dense cost.

    The candidates are ranked best first (`score`, then `|w|`, then position), each layer's
    in runs that a cut keeps whole (`cuts.chunks`: `unit_multiple` units of a unit layer, one
    group otherwise), and the ticket keeps the longest prefix of runs that fits: `order[:keep]`.
    When that lands below `LANDING` of the budget (the next run is expensive: a wide early
    layer's units), the runs ranked after it that still fit are added in order. `chosen`: the
    flat groups the ticket keeps (each unit layer's best `unit_floors` whatever they cost; the
    live groups no cut can remove, `_fixed`; removed groups stay removed); `groups`: the same
    as group masks per layer. `floor`: `(min_units, min_fraction, unit_multiple)`."""
    min_units, min_fraction, unit_multiple = floor
    layers = cost.layers
    order = cuts.rank(layers, candidates, score)
    owner = cuts.owners(layers)
    forced = cuts.floors(order, owner, unit_floors(layers, *floor))
    runs = cuts.chunks(order[~np.isin(order, forced)], owner, unit_sizes(layers, unit_multiple))
    order = np.concatenate(runs) if runs else np.zeros(0, dtype=int)
    ends = np.cumsum([0] + [run.size for run in runs])
    flat = cuts.flat_logits(layers)
    base = kept(flat)
    base[_fixed(cost, flat)] = True
    base[forced] = True
    base[order] = False

    def with_prefix(keep):
        chosen = base.copy()
        chosen[order[:ends[keep]]] = True
        return chosen

    def count(chosen):
        return cost.count(cuts.split(chosen, layers))

    limit = target * cost.dense
    least = count(base)
    if least > limit:
        raise BudgetError(
            f"a budget of {target:g} of the dense {cost.kind} is below what the ticket must "
            f"keep ({least / cost.dense:.4g}: groups that cannot be removed and --min_units="
            f"{min_units}, --min_unit_fraction={min_fraction:g}, --unit_multiple="
            f"{unit_multiple} per layer); give a larger budget or a smaller floor.")
    keep = cuts.largest_fitting(lambda k: count(with_prefix(k)) <= limit, len(runs))
    chosen = with_prefix(keep)
    spent = count(chosen)
    for run in runs[keep + 1:keep + 1 + MAX_FILL]:
        if spent >= LANDING * limit:
            break
        chosen[run] = True
        trial = count(chosen)
        if trial <= limit:
            spent = trial
        else:
            chosen[run] = False
    return order, int(ends[keep]), chosen, cuts.split(chosen, layers)


def cut_learned(cost, target, min_units=1, min_fraction=0.0, unit_multiple=1):
    """Cuts a learned mask (CS, ISS) onto the budget: the removable live groups ranked by
    `s` keep the most that fit within `target` of the dense cost (their logits shifted by one
    threshold, as `TargetRemaining` shifts them, and set just above or below 0 where the
    fill of `_plan_cut` keeps a group ranked below one it drops); each unit layer keeps its
    best `unit_floors` (`min_units`, `min_fraction`) and a multiple of `unit_multiple` units,
    and groups no cut can remove are kept.
    Returns the ticket's deployed fraction."""
    layers = cost.layers
    flat = cuts.flat_logits(layers)
    candidates = np.flatnonzero(np.concatenate([r.ravel() for r in cost.removable])
                                & ~removed(flat))
    order, keep, chosen, groups = _plan_cut(cost, target, flat, candidates,
                                            (min_units, min_fraction, unit_multiple))
    shifted, threshold = cuts.shift_to_keep(flat, order, keep)
    moved = flat - threshold
    kept_now, dropped_now = candidates[chosen[candidates]], candidates[~chosen[candidates]]
    shifted[kept_now] = np.maximum(moved[kept_now], cuts.TIE_MARGIN)
    shifted[dropped_now] = np.minimum(moved[dropped_now], -cuts.TIE_MARGIN)
    fixed = _fixed(cost, flat)
    shifted[fixed] = np.maximum(flat[fixed], cuts.TIE_MARGIN)
    cuts.assign(layers, shifted)
    return cost.fraction(groups)


def soft_cost(cost):
    """The expected cost the soft mask `m` stands for: each masked layer's share of their
    dense cost times its mean `m` (a linear estimate for TensorBoard;
    `DeployedCost.fraction` is the ticket's exact count)."""
    total = weight = 0.0
    for layer in cost.layers:
        mask = np.asarray(layer.soft_mask(), "float64")
        share = cost.dense_cost_of(layer)
        total += share * float(np.mean(np.broadcast_to(mask, layer.mask_logits.shape)))
        weight += share
    return total / weight if weight else 1.0


def _within_layer_quantiles(score, layers, candidates):
    """Each candidate's rank among its own layer's candidates, as a fraction (0 worst):
    cutting these globally removes the same share of every layer (a layerwise rate)."""
    owner = cuts.owners(layers)
    quantile = np.zeros(score.size)
    for index in np.unique(owner[candidates]):
        mine = candidates[owner[candidates] == index]
        ranks = np.argsort(np.argsort(score[mine], kind="stable"), kind="stable")
        quantile[mine] = (ranks + 1) / mine.size
    return quantile


def prune_to_budget(cost, target, method, min_units=1, min_fraction=0.0, unit_multiple=1):
    """Removes the lowest-scored surviving groups of `method` (a `PruningMethod`: `|w|` for
    IMP, random draws for random pruning) until the ticket deploys within `target` of the
    dense cost, keeping the most that fit (in runs of `unit_multiple` units per unit layer).
    With `method.scope == "layerwise"` every layer
    loses the same share of its survivors; with `"global"` one ranking decides. Returns the
    ticket's deployed fraction."""
    layers = cost.layers
    flat = cuts.flat_logits(layers)
    survivors = kept(flat) & np.concatenate([r.ravel() for r in cost.removable])
    candidates = np.flatnonzero(survivors)
    scores_of = method.scores(layers)
    score = np.full(flat.size, -np.inf)
    start = 0
    for index, layer in enumerate(layers):
        size = int(np.prod(layer.mask_logits.shape))
        mine = np.flatnonzero(survivors[start:start + size])
        if mine.size:
            score[start + mine] = scores_of(index, layer, mine)
        start += size
    if method.scope == "layerwise":
        score = _within_layer_quantiles(score, layers, candidates)
    _, _, chosen, groups = _plan_cut(cost, target, score, candidates,
                                     (min_units, min_fraction, unit_multiple))
    flat[candidates[~chosen[candidates]]] = REMOVED_LOGIT
    cuts.assign(layers, flat)
    return cost.fraction(groups)


__all__ = ["BUDGET_KINDS", "BudgetError", "BudgetTarget", "DeployedCost", "budget_multiplier",
           "cut_learned",
           "minimal_ticket", "prune_to_budget", "soft_cost"]
