"""`shrink`'s plan: which units of a ticket can leave the network, on numpy arrays only.

`plan(model, graph)` walks the model's layers (`shrink_graph.inputs_of`) once forward, with a
backward pass first (`unused_channels`), and records what each unit layer, depthwise convolution and
BatchNormalization keeps; `shrinking.shrink` rebuilds the model from it, `deployed_cost`
counts tickets with it, `unit_plan` dry-runs it before masking. The rules are `shrinking`'s
module docstring.
"""

import dataclasses

import keras
import numpy as np

from keras_lottery import compat
from keras_lottery.tickets.shrink_attention import attention_plan, is_attention
from keras_lottery.tickets.shrink_channels import (
    Channels,
    Conflict,
    arrays_of,
    through_activation,
    through_batch_norm,
    through_flatten,
    through_padding,
)
from keras_lottery.tickets.shrink_error import ShrinkError

#: Layers that act on each channel alone and leave a channel's constant constant.
_POOLING = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D,
            keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling1D,
            keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling1D,
            keras.layers.GlobalMaxPooling2D, keras.layers.Dropout, keras.layers.SpatialDropout1D,
            keras.layers.SpatialDropout2D)
_ACTIVATIONS = (keras.layers.ReLU, keras.layers.Activation, keras.layers.LeakyReLU,
                keras.layers.ELU)
_MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
           keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate)
_UNIT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
#: Layers that move positions but leave channels alone; zero padding makes a constant channel
#: depend on the position (exact only for a constant 0 or a channel nobody reads).
_PADDING = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D)
_CROPPING = (keras.layers.Cropping1D, keras.layers.Cropping2D)
_PASSING = _POOLING + _ACTIVATIONS + _PADDING + _CROPPING + (keras.layers.BatchNormalization,)


def _width(tensor):
    """A tensor's channels (its last axis; 0 when unknown, as token ids of any length)."""
    return int(tensor.shape[-1] or 0)


def _readers(graph):
    """`{layer name: [the layers that read its output]}` of a `shrink_graph.inputs_of` graph."""
    readers = {}
    for layer, inputs in graph:
        for name in inputs:
            readers.setdefault(name, []).append(layer)
    return readers


def _upstream_of_merges(graph):
    """Names of the layers from which a merge (`Add`, ...) is reached through any layers: a
    residual branch, whose layers may lose every unit (the branch then adds a constant)."""
    readers = _readers(graph)
    upstream = set()
    for layer, _ in reversed(graph):
        if any(isinstance(r, _MERGES) or r.name in upstream for r in readers.get(layer.name, [])):
            upstream.add(layer.name)
    return upstream


def _merge_fed(graph):
    """Names of the unit layers whose channels reach a merge (`Add`, ...) through layers that
    keep channels: their units stay."""
    readers = _readers(graph)
    passing = _PASSING

    def reaches_merge(name, seen=()):
        for reader in readers.get(name, []):
            if isinstance(reader, _MERGES):
                return True
            if isinstance(reader, passing) and reader.name not in seen and reaches_merge(
                    reader.name, seen + (reader.name,)):
                return True
        return False

    return {layer.name for layer, _ in graph
            if isinstance(layer, _UNIT_LAYERS + (keras.layers.DepthwiseConv2D,))
            and reaches_merge(layer.name)}


class _Shrinker:
    """One pass over the graph with a given set of units that must stay. `kernels`, when
    given, holds `{layer name: [kernel, bias]}` (numpy) read instead of those layers' weights
    (a masked model's ticket, without stripping it)."""

    def __init__(self, model, graph, keep_units, kernels=None, counting=False,
                 trained_statistics=False):
        self.model, self.graph, self.keep_units = model, graph, keep_units
        self.kernels, self.counting = kernels or {}, counting
        #: Treat every constant through BatchNormalization as nonzero, as it is once the
        #: statistics have trained (a dry run on a fresh model, whose BN maps 0 to 0).
        self.trained_statistics = trained_statistics
        self.protected = _merge_fed(graph) | {compat.producing_layer(t).name for t in model.outputs}
        self.in_residual_branch = _upstream_of_merges(graph)
        self.weights, self.sizes, self.removed = {}, {}, {}
        #: Attention layers (their `sizes` and `removed` count heads).
        self.heads = set()
        self.unused = {}

    def _arrays(self, layer):
        return arrays_of(layer, self.kernels)

    def run(self):
        self.unused = unused_channels(self.model, self.graph, self.kernels)
        channels = {}
        for layer, inputs in self.graph:
            inbound = [channels[name] for name in inputs]
            channels[layer.name] = self._layer(layer, inbound)
        return self

    def _layer(self, layer, inbound):
        if isinstance(layer, keras.layers.InputLayer):
            return Channels.full(_width(layer.output))
        first = inbound[0] if inbound else Channels.full(_width(layer.input))
        if isinstance(layer, _UNIT_LAYERS):
            return self._unit_layer(layer, first)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return _depthwise(self, layer, first)
        if isinstance(layer, keras.layers.BatchNormalization):
            self.weights[layer.name], channels = through_batch_norm(layer, first,
                                                             self.trained_statistics)
            return channels
        if isinstance(layer, _POOLING + _CROPPING):
            return first
        if isinstance(layer, _PADDING):
            return through_padding(first, self.unused.get(layer.name))
        if isinstance(layer, _ACTIVATIONS):
            return dataclasses.replace(first, constant=through_activation(layer, first.constant))
        if isinstance(layer, keras.layers.Flatten):
            return through_flatten(layer, first)
        if is_attention(layer):
            full = all(len(c.kept) == c.total for c in inbound)
            self.weights[layer.name], dead = attention_plan(layer, full, self.kernels)
            self.heads.add(layer.name)  # (no head kept: one silent head stays, head 0)
            self.sizes[layer.name] = max(1, int(np.sum(~dead)))
            self.removed[layer.name] = np.flatnonzero(dead).tolist()[0 if (~dead).any() else 1:]
            return Channels.full(_width(layer.output))
        if all(len(c.kept) == c.total for c in inbound):
            return Channels.full(_width(layer.output))
        raise ShrinkError(f"shrink: cannot take channels out of the input of layer "
                          f"{layer.name!r} ({type(layer).__name__}); leave the layers that feed "
                          "it without unit masks (sparsify does unless shrinkable_only=False) "
                          "or strip the ticket instead.")

    def _unit_layer(self, layer, inputs):
        kernel, *bias = self._arrays(layer)
        spatial = tuple(range(kernel.ndim - 2))
        delta = np.zeros(kernel.shape[-1], kernel.dtype)
        unpadded = isinstance(layer, keras.layers.Dense) or layer.padding == "valid" or all(
            k == 1 for k in layer.kernel_size)  # a 1x1 convolution never pads
        conflicts = []
        for channel, (value, producer) in inputs.constant.items():
            if value == 0 or not np.any(kernel[..., channel, :]):
                continue
            if not unpadded:
                conflicts.append(producer)
                continue
            delta += value * kernel[..., channel, :].sum(axis=spatial)
        if conflicts:
            raise Conflict(conflicts)
        kernel = kernel[..., inputs.kept, :]
        bias = (bias[0] if bias else np.zeros(kernel.shape[-1], kernel.dtype)) + delta
        dead = self._removable(layer, ~np.any(kernel != 0, axis=tuple(range(kernel.ndim - 1))))
        if dead.all() and layer.name in self.in_residual_branch:
            dead[0] = False  # one silent unit: its constant reaches the residual, as stripped
        elif dead.all() and not self.counting:
            raise ShrinkError(f"shrink: the ticket keeps no unit of layer {layer.name!r}; a "
                              "network without it computes a constant (search with a smaller "
                              "lambda, or a budget with --min_units >= 1).")
        kept = np.flatnonzero(~dead)
        self.weights[layer.name] = [kernel[..., kept], bias[kept]]  # (a bias, always)
        return self._record(layer, dead, bias)

    def _record(self, layer, dead, bias):
        """Notes what `layer` keeps and returns its output channels: each removed one a
        constant, `act(bias)`, made by `(layer, channel)`."""
        kept = np.flatnonzero(~dead)
        activation = keras.activations.get(layer.activation)
        outputs = np.asarray(activation(bias[dead][None]))[0] if dead.any() else []
        constant = {int(c): (float(v), (layer.name, int(c)))
                    for c, v in zip(np.flatnonzero(dead), outputs)}
        self.sizes[layer.name] = len(kept)
        self.removed[layer.name] = np.flatnonzero(dead).tolist()
        return Channels(kept, dead.size, constant)

    def _removable(self, layer, dead):
        """`dead` (its output channels that compute nothing) with the channels nobody reads,
        less those that must stay (protected layers, units kept for padding)."""
        ignored = self.unused.get(layer.name)
        if ignored is not None:
            dead = dead | ignored
        if layer.name in self.protected:
            dead[:] = False
        for unit in self.keep_units.get(layer.name, ()):
            dead[unit] = False
        return dead



def _depthwise(shrinker, layer, inputs):
    """A DepthwiseConv2D (depth multiplier 1) keeps channel c if its input channel is kept
    and its kernel is not gone; a gone input with a nonzero constant folds exactly only
    where the layer does not pad (else the producer stays)."""
    kernel, *bias = shrinker._arrays(layer)
    if layer.depth_multiplier != 1:
        if len(inputs.kept) == inputs.total:
            return Channels.full(kernel.shape[2] * kernel.shape[3])
        raise ShrinkError(f"shrink: {layer.name!r} has depth_multiplier "
                          f"{layer.depth_multiplier}; shrink takes channels out of "
                          "DepthwiseConv2D layers with depth_multiplier 1 only.")
    bias = bias[0].copy() if bias else np.zeros(kernel.shape[2], kernel.dtype)
    dead = ~np.any(kernel != 0, axis=(0, 1, 3))
    padded = layer.padding != "valid" and any(k > 1 for k in layer.kernel_size)
    conflicts = []
    for channel, (value, producer) in inputs.constant.items():
        if value != 0 and not dead[channel]:
            if padded:
                conflicts.append(producer)
                continue
            bias[channel] += value * kernel[:, :, channel, 0].sum()
        dead[channel] = True
    if conflicts:
        raise Conflict(conflicts)
    dead = shrinker._removable(layer, dead)
    kept = np.flatnonzero(~dead)
    gone = [inputs.constant[c][1] for c in kept.tolist() if c in inputs.constant]
    if gone:  # a channel that must stay (it reaches a merge) needs its input back
        raise Conflict(gone)
    shrinker.weights[layer.name] = [kernel[:, :, kept, :], bias[kept]]
    return shrinker._record(layer, dead, bias)


def _ignored_inputs(reader, kernels, unused):
    """A bool array over `reader`'s input channels that it ignores (zero weights, a removed
    depthwise channel, or channels ignored downstream of a passing layer); None when it
    reads them all or cannot tell."""
    if isinstance(reader, _UNIT_LAYERS):
        kernel = arrays_of(reader, kernels)[0]
        return ~np.any(kernel != 0, axis=tuple(i for i in range(kernel.ndim)
                                               if i != kernel.ndim - 2))
    if isinstance(reader, keras.layers.DepthwiseConv2D) and reader.depth_multiplier == 1:
        return ~np.any(arrays_of(reader, kernels)[0] != 0, axis=(0, 1, 3))
    if isinstance(reader, _PASSING):
        return unused.get(reader.name)
    return None


def unused_channels(model, graph, kernels=None):
    """`{layer name: bool array}`: the output channels of each layer that no reader uses (a
    backward pass): an expand conv's unit whose depthwise channel is gone, for instance."""
    readers = _readers(graph)
    outputs = {compat.producing_layer(t).name for t in model.outputs}
    unused = {}
    for layer, _ in reversed(graph):
        if layer.name in outputs or not readers.get(layer.name):
            continue
        ignored = None
        for reader in readers[layer.name]:
            mask = _ignored_inputs(reader, kernels, unused)
            if mask is None:
                ignored = None
                break
            ignored = mask if ignored is None else ignored & mask
        if ignored is not None and ignored.any():
            unused[layer.name] = ignored
    return unused


def plan(model, graph, kernels=None, counting=False, trained_statistics=False):
    """`(shrinker, keep_units)`: what shrinking `model` (its `graph`, `inputs_of`) keeps of
    each unit layer (`shrinker.sizes`, `.weights`, `.removed`, `.protected`), and the gone
    units kept because their constant feeds a padded convolution. `kernels` as `_Shrinker`'s.
    Only numpy work: no model is built (`deployed_cost` counts tickets with it, `counting`:
    a layer may lose every unit, as a ticket may mid-search; `unit_plan` dry-runs it with
    `trained_statistics`)."""
    keep_units, tries = {}, len(model.layers) * 64 + 1
    for _ in range(tries):  # each retry keeps one more unit
        try:
            shrinker = _Shrinker(model, graph, keep_units, kernels, counting, trained_statistics)
            return shrinker.run(), keep_units
        except Conflict as conflict:
            for name, unit in conflict.producers:
                keep_units.setdefault(name, set()).add(unit)
    raise ShrinkError(f"shrink gave up after {tries} tries: removed units kept conflicting; "
                      "strip the ticket instead (strip(model)).")
