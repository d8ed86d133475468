"""What the deployed network of a ticket costs, counted fast enough to steer a search.

`DeployedCost(model, kind)` counts, for a masked `model` and any choice of kept mask groups,
the `kind` of the network that is deployed, as the deployment record (`results.json`,
`tickets.deployment`) counts it:
- `"macs"`: multiply-accumulates per example of the kernel layers and of each attention
  layer's kept heads (`size_report`'s `dense_macs_per_example`); `"parameters"`: every
  stored weight but the masks.
- unit tickets: the network `shrink` makes (a removed unit leaves its layer and the input
  rows or channels of the layers that read it; units that reach a merge or the outputs
  stay): the record's `deployed`;
- weight and block tickets: the stripped network's kept weights: the record's
  `deployed_nonzero` (a weight the ticket keeps counts even if it happens to be 0).
Unit tickets run `shrink`'s plan on numpy arrays (`shrink_plan.plan`): no model is built, so a
count takes milliseconds and a budget can be checked during training.
"""

import keras
import numpy as np

from keras_lottery import compat
from keras_lottery.layers import MASKED_CLASSES, attention, costs, masked_layers
from keras_lottery.layers.mask_rules import kept
from keras_lottery.layers.masked_layer import MaskedLayer, masked_layers_by_key
from keras_lottery.tickets import shrink_graph, shrink_plan

#: Granularities whose removed groups leave the deployed network (`shrink`).
STRUCTURED = ("unit", "head")
#: What a budget counts: multiply-accumulates per example or stored parameters.
BUDGET_KINDS = ("macs", "parameters")


def check_kind(kind):
    """A one-line ValueError unless `kind` is one of `BUDGET_KINDS`."""
    if kind not in BUDGET_KINDS:
        raise ValueError(f"a budget counts one of {list(BUDGET_KINDS)}, got {kind!r}.")


def _size(values):
    return int(sum(np.prod(np.shape(v)) for v in values))


class DeployedCost:
    """Counts `kind` (`"macs"` or `"parameters"`) of the network a ticket of `model` deploys.

    Attributes:
        layers: the masked layers, in `masked_layers` order; group masks are given per layer.
        removable: per layer, a bool array of `s`'s shape: the groups removing which can
            make the deployed network cheaper (with unit masks: not those of the output
            layer, of layers whose channels reach a merge, or of layers `shrink` cannot
            take units out of; see `unshrinkable`).
        unshrinkable: `{layer name: why}` for unit layers whose units cannot be removed.
        dense: the dense network's count (every group kept).

    A ValueError (one line) names a layer whose MACs cannot be counted (a variable length).
    """

    def __init__(self, model, kind="macs"):
        check_kind(kind)
        self.model, self.kind = model, kind
        self.layers = masked_layers(model, required_by="DeployedCost")
        keyed = compat.keyed_layers(model)
        kernel_layers = {key: layer for key, layer in keyed
                         if isinstance(layer, MaskedLayer) or type(layer) in MASKED_CLASSES}
        self._positions = _positions(model, kind, kernel_layers)
        self._kernel_sizes = {key: _size([_kernel(layer)]) for key, layer in
                              kernel_layers.items()}
        #: The attention layers, whose own MACs (`costs.attention_macs`) count per kept head.
        self._attention = [(key, layer) for key, layer in keyed
                           if isinstance(layer, keras.layers.MultiHeadAttention)]
        self._key_of = {id(layer): key for key, layer in kernel_layers.items()}
        mask_ids = {id(v) for layer in self.layers for v in layer.mask_variables()}
        self._parameters = _size([v for v in model.weights if id(v) not in mask_ids])
        self.structured = any(layer.granularity.name in STRUCTURED for layer in self.layers)
        self.removable = [np.ones(layer.mask_logits.shape, bool) for layer in self.layers]
        self.unshrinkable = {}
        if self.structured:
            #: The attention layer that owns each head-masked output projection.
            self._owners = attention.head_owner(model)
            self._graph = shrink_graph.inputs_of(model)
            self._top_level = {layer.name: layer for layer, _ in self._graph}
            self.unshrinkable = _unshrinkable(self)
            for index, layer in enumerate(self.layers):
                if layer.name in self.unshrinkable:
                    self.removable[index][...] = False
        self.dense = self.count([np.ones(layer.mask_logits.shape, bool) for layer in self.layers])

    def dense_cost_of(self, layer):
        """What masked `layer`'s kernel costs in the dense network (its MACs or weights)."""
        return self._positions[self._key_of[id(layer)]] * float(
            np.prod(layer.unmasked_kernel.shape))

    def ticket_groups(self):
        """The current ticket's group masks (`s > 0`), one per layer."""
        return [kept(np.asarray(layer.mask_logits.numpy())) for layer in self.layers]

    def ticket_fraction(self, masks):
        """The deployed fraction of a ticket `{layer key: bool mask}` (`extract_masks`), read
        after the round's reset has moved `s`."""
        by_key = masked_layers_by_key(self.model)
        groups = {id(layer): layer.granularity.to_groups(masks[key], layer)
                  for key, layer in by_key.items()}
        return self.fraction([groups[id(layer)] for layer in self.layers])

    def fraction(self, groups=None):
        """The deployed cost of `groups` (default: the current ticket) over the dense one."""
        return self.count(groups) / self.dense if self.dense else 1.0

    def count(self, groups=None):
        """The deployed network's count under `groups` (group-shaped bool masks per layer)."""
        groups = self.ticket_groups() if groups is None else groups
        if not self.structured:
            return self._linear(groups)
        shrinker, _ = shrink_plan.plan(self.model, self._graph, self._kernels(groups),
                                       counting=True)
        return self._shrunk(shrinker)

    def _kernels(self, groups):
        """`shrink_plan`'s `kernels` for group masks: top-level layers by name, attention's
        output projections as `"<attention>/<projection>"`."""
        kernels = {}
        for layer, mask in zip(self.layers, groups):
            owner = self._owners.get(id(layer))
            if layer.name in self._top_level:
                kernels[layer.name] = _ticket_arrays(layer, mask)
            elif owner is not None and owner.name in self._top_level:
                kernels[f"{owner.name}/{layer.name}"] = _ticket_arrays(layer, mask)
        return kernels

    def _linear(self, groups):
        total = self._parameters if self.kind == "parameters" else sum(
            self._positions[key] * size for key, size in self._kernel_sizes.items()
        ) + costs.attention_macs(self._attention, self._positions)
        for layer, mask in zip(self.layers, groups):
            removed = int(np.size(mask) - np.count_nonzero(mask)) * layer.group_size
            total -= removed * self._positions[self._key_of[id(layer)]]
        return total

    def _shrunk(self, shrinker):
        if self.kind == "parameters":
            total = self._parameters
            for name, arrays in shrinker.weights.items():
                total += _size(arrays) - _plain_size(self._top_level[name])
            return total
        total = costs.attention_macs(self._attention, self._positions,
                                     {name: shrinker.sizes[name] for name in shrinker.heads})
        for key, size in self._kernel_sizes.items():
            layer = self._top_level.get(key)
            owner = key.split("/")[0]
            if layer is not None and key in shrinker.sizes:
                size = _size([shrinker.weights[key][0]])
            elif owner in shrinker.heads:  # a projection of attention: its kept heads' share
                heads = shrinker.sizes[owner] + len(shrinker.removed[owner])
                size = size * shrinker.sizes[owner] // heads
            total += self._positions[key] * size
        return total


def _positions(model, kind, kernel_layers):
    """`{layer key: how many times its kernel is applied per example}` (1 for parameters)."""
    if kind != "macs":
        return {key: 1 for key in kernel_layers}
    positions = costs.positions_by_key(model, kernel_layers)
    unknown = [key for key, p in positions.items() if p is None]
    if unknown:
        raise ValueError(f"cannot count the multiply-accumulates of layer {unknown[0]!r}: its "
                         "shape per example is unknown (a variable length); give a parameter "
                         "budget instead.")
    return positions


def _unshrinkable(cost):
    """`{layer name: why}` of the unit layers no cut can take units out of: layers inside
    other layers, those whose channels reach a merge or the outputs (`shrink` keeps them),
    and those `shrink` refuses (tried one layer at a time with half its units gone)."""
    everything = [np.ones(layer.mask_logits.shape, bool) for layer in cost.layers]
    shrinker, _ = shrink_plan.plan(cost.model, cost._graph, cost._kernels(everything))
    found = {}
    for index, layer in enumerate(cost.layers):
        if layer.granularity.name not in STRUCTURED:
            continue
        owner = cost._owners.get(id(layer))
        if owner is not None and owner.name in cost._top_level:  # heads: always removable
            continue
        if layer.name not in cost._top_level:
            found[layer.name] = "it is inside another layer"
        elif layer.name in shrinker.protected:
            found[layer.name] = "its channels reach a merge or the model's outputs"
        else:
            trial = [mask.copy() for mask in everything]
            trial[index].reshape(-1)[::2] = False
            try:
                cost.count(trial)
            except shrink_plan.ShrinkError as error:
                found[layer.name] = str(error)
    return found


def _kernel(layer):
    return layer.unmasked_kernel if isinstance(layer, MaskedLayer) else layer.kernel


def _plain_size(layer):
    """A layer's weights as a plain layer stores them (without the masks of the masked layers
    in it, itself included)."""
    masks = {id(v) for inner in masked_layers(layer) for v in inner.mask_variables()}
    return _size([v for v in layer.weights if id(v) not in masks])


def _ticket_arrays(layer, groups):
    """`[kernel, bias]` of `layer` as `strip` makes them when its ticket is `groups`."""
    kernel = layer.unmasked_kernel.numpy()
    mask = layer.granularity.expand_numpy(groups, kernel.shape)
    arrays = [kernel * (mask * layer.mask_scale).astype(kernel.dtype)]
    if getattr(layer, "bias", None) is not None:
        bias = layer.bias.numpy()
        if layer.granularity.gates_bias:
            bias = bias * (groups.reshape(bias.shape) * layer.mask_scale).astype(bias.dtype)
        arrays.append(bias)
    return arrays
