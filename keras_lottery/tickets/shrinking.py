"""`shrink(model)`: a ticket without its removed units, as a smaller plain Keras model.

A unit (a Dense neuron, a conv filter) is gone when the ticket keeps none of its weights:
every unit of a `unit`-granularity ticket whose logit is <= 0, and the dead units that
unstructured tickets have. `shrink` strips the ticket (`strip`), then walks the model's
graph (Sequential or functional, channels last) and
- takes each gone unit out of its layer, with its bias and the channel's BatchNormalization
  parameters, and the matching input rows or channels out of the layers that read it
  (through activations, pooling, dropout, BatchNormalization and Flatten, whose index
  mapping from (position, channel) to feature it follows);
- folds a gone unit's constant output (`act(bias)`, through BatchNormalization and
  activations) into the reading layer's bias where that is exact: a Dense layer, or a
  convolution with `valid` padding. A unit whose nonzero constant feeds a `same`-padded
  convolution (its zero padding makes the contribution depend on the position) stays, and
  the report says so; with `unit` masks a gone unit outputs `act(0)`, 0 for ReLU;
- keeps every channel that reaches a residual `Add` (or any other merge): only
  block-internal channels shrink, so the channels added together keep their meaning;
- keeps every unit of the model's outputs;
- keeps one *silent* unit of a layer in a residual branch (a merge is downstream) whose
  ticket keeps none: the branch then adds a constant, as the stripped ticket's does (a
  transformer block's feed-forward layer); elsewhere such a ticket is an error.
The result's outputs equal `strip(model)`'s up to float rounding (<= 1e-5). What it cannot
shrink through (a layer that would need its input channels cut but is not one of the
above) is a one-line `ShrinkError` naming the layer.
"""

import keras

from keras_lottery import compat
from keras_lottery.layers import masked_layers
from keras_lottery.tickets import hub_unroll
from keras_lottery.tickets.convert import strip
from keras_lottery.tickets.shrink_error import ShrinkError
from keras_lottery.tickets.shrink_graph import inputs_of
from keras_lottery.tickets.shrink_plan import plan

__all__ = ["ShrinkError", "inputs_of", "plan", "shrink"]


def _rebuild(model, shrinker):
    def clone(layer):
        config = layer.get_config()
        if layer.name in shrinker.heads:
            config["num_heads"] = shrinker.sizes[layer.name]
        elif layer.name in shrinker.sizes:
            if not isinstance(layer, keras.layers.DepthwiseConv2D):  # (channels: its input's)
                config["units" if isinstance(layer, keras.layers.Dense) else "filters"] = (
                    shrinker.sizes[layer.name])
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    small = keras.models.clone_model(model, clone_function=clone)
    for layer in small.layers:
        if layer.name in shrinker.weights:
            layer.set_weights(shrinker.weights[layer.name])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return type(small).from_config(small.get_config()), small


def shrink(model, return_report=False):
    """A plain Keras model without the units `model`'s ticket removed (see the module).

    Args:
        model: a masked model (its ticket is stripped first) or a stripped one, Sequential
            or functional, channels last; a keras-hub model (BERT, GPT-2: `hub_unroll`)
            becomes a functional model of Keras layers.
        return_report: also return `{"layers": {name: {"units", "kept", "removed"}},
            "parameters": before, "shrunk_parameters": after, "kept_for_padding": [...]}`.
    """
    if not (isinstance(model, keras.Sequential) or compat.is_functional(model)):
        raise ShrinkError(f"shrink handles Sequential and functional models; "
                          f"{type(model).__name__} is subclassed.")
    plain = strip(model, warn_undecided=False) if masked_layers(model) else model
    if hub_unroll.needs_unrolling(plain):  # keras-hub blocks: a functional model of their layers
        plain = hub_unroll.unroll(plain)
    shrinker, keep_units = plan(plain, inputs_of(plain))
    small, built = _rebuild(plain, shrinker)
    small.set_weights(built.get_weights())
    if not return_report:
        return small
    layers = {name: {"units": len(removed) + shrinker.sizes[name], "kept": shrinker.sizes[name],
                     "removed": removed} for name, removed in shrinker.removed.items()}
    return small, {"layers": layers, "parameters": int(plain.count_params()),
                   "shrunk_parameters": int(small.count_params()),
                   "kept_for_padding": sorted(f"{n}:{u}" for n, us in keep_units.items()
                                              for u in us)}
