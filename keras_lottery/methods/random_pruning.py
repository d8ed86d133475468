"""Random pruning: after each round, remove a random share of the surviving weights, per layer
or globally. The lottery-ticket papers' sanity baseline: a ticket must beat it."""

import numpy as np

from keras_lottery.layers.mask_rules import kept
from keras_lottery.methods.pruning import PruningMethod


class RandomPruning(PruningMethod):
    """Removes `round(f * surviving)` survivors chosen at random each round.

    The choice is a function of `seed` (the search's `--seed`) and of how many weights
    survive, so a resumed run removes the same weights as an uninterrupted one.

    Args:
        fraction: share of the surviving weights removed per round.
        scope: `"layerwise"` (each layer loses its own fraction) or `"global"`.
        seed: seed of the random choice.
    """

    name = "random"
    description = "random (random pruning, the sanity baseline)"
    sweep_space = (("prune_fraction", "float", dict(min_value=0.1, max_value=0.4)),
                   ("rounds", "int", dict(min_value=2, max_value=10)))

    def __init__(self, fraction=0.2, scope="layerwise", seed=0):
        super().__init__(fraction, scope)
        self.seed = int(seed)

    @classmethod
    def from_config(cls, config):  # its own settings, and the run's seed for its draws
        settings = cls.settings_of(config)
        return cls(settings.prune_fraction, settings.prune_scope, config.seed)

    def scores(self, layers):
        alive = sum(int(kept(layer.mask_logits.numpy()).sum()) for layer in layers)
        generator = np.random.default_rng([self.seed, alive])
        return lambda index, layer, kept: generator.random(kept.size)
