"""Deterministic cuts of a ticket: rank the mask groups, keep the best ones that fit.

Shared by `TargetRemaining` (a weight count), the budget of a learned mask (`Budget`: a
deployed cost) and pruning to a budget (IMP, random pruning). A ranking puts the largest
score first, then the largest `|w|` (a group's root mean square), then the earliest position,
so a cut never depends on the order of equal scores.
"""

import numpy as np

#: How far from 0 a cut puts logits that it keeps (+) or drops (-) but sat at the threshold.
TIE_MARGIN = 1e-6


def flat_logits(layers):
    """Every layer's `s`, concatenated (float64 copies)."""
    return np.concatenate([np.asarray(layer.mask_logits.numpy(), "float64").ravel()
                           for layer in layers])


def split(flat, layers):
    """A flat per-group array back into one array of each layer's `s` shape."""
    parts, start = [], 0
    for layer in layers:
        shape = tuple(layer.mask_logits.shape)
        size = int(np.prod(shape))
        parts.append(flat[start:start + size].reshape(shape))
        start += size
    return parts


def owners(layers):
    """The index of the layer each flat group belongs to."""
    return np.concatenate([np.full(int(np.prod(layer.mask_logits.shape)), i)
                           for i, layer in enumerate(layers)])


def rank(layers, candidates, score):
    """`candidates` (flat group indices) best first: by `score[candidates]` (largest first),
    then by the group's `|w|`, then by position."""
    magnitude = np.concatenate([layer.group_rms().ravel() for layer in layers])[candidates]
    return candidates[np.lexsort((candidates, -magnitude, -np.asarray(score)[candidates]))]


def floors(order, owner_of, minimum):
    """The first `minimum[layer]` groups of every layer in `order` (each layer's best): those
    a cut keeps whatever it costs (`--min_units`, `--min_unit_fraction`)."""
    taken, chosen = {}, []
    for index in order.tolist():
        layer = int(owner_of[index])
        if taken.get(layer, 0) < minimum[layer]:
            taken[layer] = taken.get(layer, 0) + 1
            chosen.append(index)
    return np.array(chosen, dtype=int)


def chunks(order, owner_of, sizes):
    """`order` (flat groups, best first) cut into runs a cut keeps whole: each layer's groups,
    in its own order, in consecutive runs of `sizes[layer]` (its last run may be shorter),
    the runs ranked by their worst group's place in `order`. Keeping a prefix of the runs keeps
    each layer's best groups in a count that is a multiple of its size (`--unit_multiple`)."""
    order = np.asarray(order, dtype=int)
    if order.size == 0:
        return []
    runs, ends = [], []
    layer_of = owner_of[order]
    for layer in np.unique(layer_of):
        positions = np.flatnonzero(layer_of == layer)
        size = max(1, int(sizes[int(layer)]))
        for start in range(0, positions.size, size):
            run = positions[start:start + size]
            runs.append(order[run])
            ends.append(run[-1])
    return [runs[i] for i in np.argsort(np.asarray(ends), kind="stable")]


def largest_fitting(fits, count):
    """The largest `k` in `[0, count]` with `fits(k)`, for a `fits` that holds up to some
    `k` and not beyond (a cost that grows with `k`); `fits(0)` is assumed."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def shift_to_keep(flat, order, keep):
    """`flat` with the groups of `order` shifted by one threshold so that exactly
    `order[:keep]` sit above 0 (the others below): the shift leaves their ranking, and so a
    learned mask's choice, as it was. Logits that tie at the threshold land `TIE_MARGIN`
    above or below 0. Returns `(shifted, threshold)`."""
    values = flat[order]
    if keep <= 0:
        threshold = float(values.max()) + TIE_MARGIN if values.size else 0.0
    elif keep >= values.size:
        threshold = float(values.min()) - TIE_MARGIN
    else:
        lowest_kept, highest_dropped = float(values[keep - 1]), float(values[keep])
        threshold = (0.5 * (lowest_kept + highest_dropped) if lowest_kept > highest_dropped
                     else lowest_kept)
    shifted = flat.copy()
    moved = values - threshold
    moved[:keep] = np.maximum(moved[:keep], TIE_MARGIN)
    moved[keep:] = np.minimum(moved[keep:], -TIE_MARGIN)
    shifted[order] = moved
    return shifted, threshold


def assign(layers, flat):
    """Writes a flat array of logits into the layers' `s`."""
    for layer, part in zip(layers, split(flat, layers)):
        layer.mask_logits.assign(part.astype("float32"))

