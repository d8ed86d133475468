"""Iterative Magnitude Pruning (IMP, the paper's Algorithm 1): after each round, remove the
surviving weights of smallest magnitude `|w|`, per layer or globally (`PruningMethod`)."""

from keras_lottery.methods.base import Setting, fraction
from keras_lottery.methods.pruning import PruningMethod, _check_fraction

KINDS = ("conv", "dense", "output")


class IterativeMagnitudePruning(PruningMethod):
    """IMP: fixed binary masks; at round end prune the smallest surviving weights.

    Args:
        fraction: share of the surviving weights removed per round (paper: 0.2).
        scope: `"layerwise"` (each layer loses its own fraction) or `"global"`
            (one magnitude threshold over all masked layers).
        layer_fractions: `{layer name: fraction}` overriding `fraction` per layer
            in layerwise pruning (e.g. 0.15 for convolutions, 0.1 for the output); a
            name that repeats across blocks (`query`) sets every layer of that name.
        conv_fraction, dense_fraction, output_fraction: layerwise rates of every
            convolution, every dense layer and the last masked layer.
    """

    name = "imp"
    description = "imp (Iterative Magnitude Pruning)"
    settings = PruningMethod.settings + tuple(
        Setting(f"prune_fraction_{kind}", 0.0, f"IMP layerwise rate of {what} (0: {default}).",
                check=fraction(zero_allowed=True))
        for kind, what, default in (("conv", "convolutions", "--prune_fraction"),
                                    ("dense", "dense layers", "--prune_fraction"),
                                    ("output", "the last masked layer", "the dense rate")))
    sweep_space = (("prune_fraction", "float", dict(min_value=0.1, max_value=0.4)),
                   ("rounds", "int", dict(min_value=2, max_value=10)))

    def __init__(self, fraction=0.2, scope="layerwise", layer_fractions=None,
                 conv_fraction=None, dense_fraction=None, output_fraction=None):
        super().__init__(fraction, scope)
        self.layer_fractions = {
            name: _check_fraction(f"prune fraction of {name}", value)
            for name, value in (layer_fractions or {}).items()}
        self.kind_fractions = {
            kind: _check_fraction(f"prune fraction of {kind} layers", value)
            for kind, value in zip(KINDS, (conv_fraction, dense_fraction, output_fraction))
            if value}

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.prune_fraction, settings.prune_scope,
                   conv_fraction=settings.prune_fraction_conv or None,
                   dense_fraction=settings.prune_fraction_dense or None,
                   output_fraction=settings.prune_fraction_output or None)

    def fraction_of(self, index, layer, layers):
        """The layerwise rate of `layer`: by name, then the output layer's, then its kind's
        (`conv` for every convolution, Conv1D and depthwise included), then `fraction`."""
        if layer.name in self.layer_fractions:
            return self.layer_fractions[layer.name]
        if index == len(layers) - 1 and "output" in self.kind_fractions:
            return self.kind_fractions["output"]
        return self.kind_fractions.get(layer.kind, self.fraction)

    def scores(self, layers):
        """`|w|`; for groups of weights (units, blocks) their root mean square, the L2 norm
        per weight (classic filter pruning ranks units by it)."""
        del layers
        return lambda index, layer, kept: layer.group_rms().reshape(-1)[kept]
