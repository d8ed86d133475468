"""Room `layers`: the one masking mechanism (`MaskedLayer`) and the layers built on it.

    masked_layer   MaskedLayer: `w`, `s`, `beta`, `lambda`; the effective kernel `w * m`
    dense, conv    CSDense; CSConv1D, CSConv2D, CSDepthwiseConv2D
    einsum_dense   CSEinsumDense (attention's projections)
    attention      attention heads as groups: the output projection's `head` masks
    in_place       mask_in_place: a built Keras layer becomes its masked class, where it is
    mask_rules     MaskRule, its registry, the ticket's rule `kept` (`s > 0`) and the `fixed`
                   rule `1[s > 0]`
    continuous     the `continuous` rule `sigmoid(beta*s)` (CS's, every layer's default);
                   native: its CPU kernel (kernels/continuous_mask.cc)
    annealing      AnnealingClock: the optimizer's step counter that `beta` is read from
    ticket_readout TicketReadout: the ticket `b(s)` a layer's logits give, its size, setting it
    costs          MACs per weight of a layer; `lambda` per layer priced by them (penalty_cost)

ISS's `stochastic` rule lives with its method in `keras_lottery.methods.iss` and registers
into `mask_rules` when that is imported.
May import: `keras_lottery.compat` only.
"""

from keras_lottery.layers import continuous  # noqa: F401  (registers the default rule)
from keras_lottery.layers.conv import CSConv1D, CSConv2D, CSDepthwiseConv2D
from keras_lottery.layers.dense import CSDense
from keras_lottery.layers.einsum_dense import CSEinsumDense
from keras_lottery.layers.in_place import MASKED_CLASSES, mask_in_place, maskable
from keras_lottery.layers.mask_rules import REMOVED_LOGIT, MaskRule, get_rule, register_rule
from keras_lottery.layers.masked_layer import (
                                               MaskedLayer,
                                               masked_layers,
                                               masked_layers_by_key,
                                               official_mask_scale,
)

__all__ = ["MASKED_CLASSES", "CSConv1D", "CSConv2D", "CSDense", "CSDepthwiseConv2D",
           "CSEinsumDense", "MaskRule", "MaskedLayer", "REMOVED_LOGIT", "get_rule",
           "mask_in_place", "maskable", "masked_layers", "masked_layers_by_key",
           "official_mask_scale",
           "register_rule"]
