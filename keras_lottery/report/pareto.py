"""The Pareto envelope of (remaining, accuracy) points: the report's and the sweep's front."""

import numpy as np


def pareto_envelope(points):
    """Best accuracy at each sparsity: the points no sparser-and-better point dominates.

    `points` are `(remaining, accuracy)`; returns them sorted by remaining.
    """
    front, best = [], -np.inf
    for remaining, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append((remaining, accuracy))
            best = accuracy
    return front
