"""Which layers a unit ticket can shrink: a dry run of `shrink`'s plan before anything is
masked (`sparsify(mask_granularity="unit")` masks only those).

A layer's units are worth a mask only if removing them makes the shrunk network smaller. They
are not when its channels reach a residual merge (`shrink` keeps those), when a removed unit's
constant output would reach zero padding (a MobileNet expand conv's unit, whose 0 becomes a
constant through trained BatchNormalization before its padded depthwise conv: `shrink` keeps
the unit; the depthwise channel is the group to mask, and its
removal takes the expand unit and the project conv's input with it), or when `shrink` cannot
take units out of a layer that reads it.
"""

import keras
import numpy as np

from keras_lottery import compat
from keras_lottery.tickets import hub_unroll, shrink_graph, shrink_plan

_CHANNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                   keras.layers.DepthwiseConv2D)


def _without_every_other_unit(arrays, depthwise):
    """A layer's `[kernel, bias...]` with every other unit (output channel) zeroed."""
    kernel = arrays[0].copy()
    if depthwise:
        kernel[:, :, ::2, :] = 0
    else:
        kernel[..., ::2] = 0
    rest = []
    for bias in arrays[1:]:
        bias = bias.copy()
        bias[::2] = 0
        rest.append(bias)
    return [kernel] + rest


def idle_unit_layers(model):
    """`{layer: why}` for the Dense, convolution and depthwise layers of `model` (Sequential
    or functional; the layers inside keras-hub blocks too, `hub_unroll`) whose units `shrink`
    could not remove; the layers that compute the model's outputs are not listed (the methods
    never remove the classes). Empty for a model `shrink` cannot walk (subclassed)."""
    if not (isinstance(model, keras.Sequential) or compat.is_functional(model)):
        return {}
    origins = None
    try:
        if hub_unroll.needs_unrolling(model):
            origins = {}
            model = hub_unroll.unroll(model, origins)
        graph = shrink_graph.inputs_of(model)
    except shrink_plan.ShrinkError:
        return {}
    idle = _idle_by_name(model, graph)
    return {(origins[name] if origins else model.get_layer(name)): why
            for name, why in idle.items()}


def _idle_by_name(model, graph):
    """`idle_unit_layers` of a graph `shrink` walks, by layer name."""
    outputs = {compat.producing_layer(t).name for t in model.outputs}
    candidates = [layer for layer, _ in graph
                  if isinstance(layer, _CHANNEL_LAYERS) and layer.name not in outputs]
    arrays = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in candidates}
    idle = {}
    for layer in candidates:
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        kernels = {**arrays, layer.name: _without_every_other_unit(arrays[layer.name], depthwise)}
        try:
            shrinker, _ = shrink_plan.plan(model, graph, kernels, counting=True,
                                         trained_statistics=True)
        except shrink_plan.ShrinkError as error:
            idle[layer.name] = str(error)
            continue
        if shrinker.removed.get(layer.name):
            continue
        idle[layer.name] = (
            "its channels reach a merge, which keeps them" if layer.name in shrinker.protected
            else "shrink keeps its removed units: their constant output (through "
                 "BatchNormalization) reaches zero padding; a depthwise layer that reads them "
                 "is the group to mask, its channel takes them along")
    return idle
