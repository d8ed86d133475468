"""What a layer's weights cost in computation, and `lambda` weighed by it.

`kernel_positions(layer)` is how often per example a layer applies its whole kernel: 1 for a
Dense layer on vectors, `H' * W'` for a convolution with an `H' x W'` output, `T` for a
Dense or attention projection on `T` tokens. A kernel of `n` weights costs
`n * positions` multiply-accumulates (MACs) per example.

`weigh_penalty(model, "macs")` gives each masked layer `l` its own
``lambda_l = lambda * positions_l * W / M``, with `W` the masked weights and `M` their MACs
per example over the whole model: the penalty of a unit then counts the MACs it costs instead
of its weights, and at full density the total penalty is the same as with `"weights"` (the
paper's), so a flagfile's `lambda` keeps its scale. On a network of Dense layers on vectors
both costs are equal.

A `head` group (`layers.attention`) stands for the head's query, key, value and output
slices: its `lambda_l` is scaled by what those weigh over the output slice (`"weights"`), or by
what they and the head's attention (`T_q * T_k * (key_dim + value_dim)` per head) cost in
MACs (`"macs"`), so a head is priced as a whole. This is an extension, not the paper's
method: the CS authors' follow-up (Yuan, Savarese and Maire, ICLR 2021) budgets FLOPs in the
same spirit.
"""

import keras
import numpy as np

from keras_lottery import compat
from keras_lottery.layers import attention
from keras_lottery.layers.einsum_dense import kernel_axes
from keras_lottery.layers.masked_layer import masked_layers_by_key

#: What the penalty counts per mask group: its weights (the paper), its multiply-accumulates,
#: or what removing it saves in the deployed network (`tickets.deployed_penalty`, which
#: weighs those two).
PENALTY_COSTS = ("weights", "macs", "deployed_macs", "deployed_parameters")


def _kernel_shape(layer):
    kernel = getattr(layer, "unmasked_kernel", None)
    if kernel is None:
        kernel = layer.kernel
    return tuple(int(d) for d in kernel.shape)


def _contracted_size(layer, kernel_shape):
    """How many inputs one output value of a Dense or EinsumDense layer sums over."""
    equation = getattr(layer, "equation", None)
    if equation is None:  # Dense: kernel (inputs, units)
        return kernel_shape[0]
    contracted, _ = kernel_axes(equation)
    return int(np.prod([kernel_shape[i] for i in contracted]))


def _output_channels(layer, kernel_shape):
    """How many output values one application of a convolution's kernel writes."""
    if hasattr(layer, "depth_multiplier"):  # DepthwiseConv: channels x multiplier
        return kernel_shape[-2] * kernel_shape[-1]
    return kernel_shape[-1]


def _known(shape):
    shape = tuple(shape or ())[1:]
    return shape if shape and all(d is not None for d in shape) else None


def kernel_positions(layer, input_shape=None):
    """How many times per example `layer` applies its whole kernel (its MACs per example over
    its kernel size); None when the shapes that tell it are unknown (a variable length).

    `input_shape`, when given, is the shape of the layer's input in a call.
    A Dense or EinsumDense layer is read from its input (`inputs per example / inputs per
    output value`), a convolution from its output (`outputs per example / channels`): from
    the symbolic tensors of a functional graph, or else from the input shape of the masked
    layer's last call or the shape it was built with, so layers inside other layers
    (attention's projections) are read too.
    """
    kernel_shape = _kernel_shape(layer)
    dense_like = isinstance(layer, keras.layers.Dense) or hasattr(layer, "equation")
    try:
        shape = _known((layer.input if dense_like else layer.output).shape)
    except (AttributeError, ValueError):  # no graph, or called more than once
        shape = None
    if shape is None:
        built = input_shape if _known(input_shape) else compat.build_input_shape(layer)
        if built is not None and not dense_like and _known(built) is not None:
            built = layer.compute_output_shape(built)
        shape = _known(built)
    if shape is None:
        return None
    size = int(np.prod(shape))
    return size // (_contracted_size(layer, kernel_shape) if dense_like
                    else _output_channels(layer, kernel_shape))


def _input_shapes_of_one_call(model, layers):
    """`{id(layer): input shape}` of `layers` in one call of `model` on zeros shaped like its
    inputs (batch 1): for layers that other layers call on shapes their `build` did not
    fix (attention's output projection). Each layer's `call` is wrapped for that call only;
    empty when the model has no fixed-shape inputs."""
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return {}
    if any(d is None for tensor in keras.tree.flatten(inputs) for d in tensor.shape[1:]):
        return {}
    seen = {}

    def recording(layer):
        call = layer.call

        def wrapper(x, *args, **kwargs):
            seen[id(layer)] = tuple(x.shape)
            return call(x, *args, **kwargs)
        return wrapper

    for layer in layers:
        object.__setattr__(layer, "call", recording(layer))
    try:
        model(keras.tree.map_structure(
            lambda t: np.zeros((1,) + tuple(t.shape)[1:], dtype=t.dtype), inputs),
            training=False)
    finally:
        for layer in layers:
            vars(layer).pop("call", None)
    return seen


def check_cost(cost):
    """A one-line ValueError unless `cost` is one of `PENALTY_COSTS`."""
    if cost not in PENALTY_COSTS:
        raise ValueError(f"penalty_cost must be one of {list(PENALTY_COSTS)}, got {cost!r}.")


def positions_by_key(model, layers):
    """`{key: kernel_positions}` of `{key: layer}` (layers of `model`); those only a call can
    tell (layers that other layers call) are read in one call of `model` on zeros."""
    unknown = [layer for layer in layers.values() if kernel_positions(layer) is None]
    shapes = _input_shapes_of_one_call(model, unknown) if unknown else {}
    return {key: kernel_positions(layer, shapes.get(id(layer))) for key, layer in layers.items()}


def attention_macs_per_head(attention_layer, query_positions, key_positions):
    """Multiply-accumulates per example of one head's attention itself, beside its
    projections: the scores `q . k` and their weighted sum of `v`,
    `T_q * T_k * (key_dim + value_dim)` (`T_q`, `T_k`: the positions its query and key
    projections run at)."""
    query, _, value, _ = attention.projections(attention_layer)
    return query_positions * key_positions * (_kernel_shape(query)[-1]
                                              + _kernel_shape(value)[-1])


def attention_macs(keyed, positions, kept_heads=None):
    """The attention's own multiply-accumulates per example (`attention_macs_per_head` times
    its heads) summed over the attention layers among `keyed` (`(key, layer)` pairs, their
    projections keyed `"<key>/<projection name>"` in `positions`); `kept_heads` (`{key:
    heads}`) counts fewer heads than the layer has. Layers whose positions are unknown
    count 0."""
    total = 0
    for key, layer in keyed:
        if not isinstance(layer, keras.layers.MultiHeadAttention):
            continue
        query, key_part = attention.projections(layer)[:2]
        t_q = positions.get(f"{key}/{query.name}")
        t_k = positions.get(f"{key}/{key_part.name}")
        if t_q is None or t_k is None:
            continue
        heads = (kept_heads or {}).get(key, _kernel_shape(query)[-2])
        total += heads * attention_macs_per_head(layer, t_q, t_k)
    return total


def head_costs(model, layers, positions=None):
    """`{key: (weights, macs)}` for the `head`-granularity layers of `{key: layer}`: what
    the heads stand for, summed over heads (the query, key, value and output kernels; their
    MACs per example plus the attention's `T_q * T_k * (key_dim + value_dim)` per head, when
    `positions` of `layers` are given; else None)."""
    owners = attention.head_owner(model)
    heads = {key: owners[id(layer)] for key, layer in layers.items()
             if getattr(layer, "mask_granularity", None) == attention.HEAD
             and id(layer) in owners}
    # every projection of every such attention layer, read in one call of `model` at most
    at = positions_by_key(model, {(key, i): part for key, owner in heads.items()
                                  for i, part in enumerate(attention.projections(owner))}
                          ) if positions is not None else {}
    found = {}
    for key, owner in heads.items():
        parts = attention.projections(owner)
        sizes = [int(np.prod(_kernel_shape(p))) for p in parts]
        macs = None
        if positions is not None and all(at[(key, i)] is not None for i in range(4)):
            macs = (sum(at[(key, i)] * sizes[i] for i in range(4))
                    + _kernel_shape(parts[0])[-2]
                    * attention_macs_per_head(owner, at[(key, 0)], at[(key, 1)]))
        found[key] = (sum(sizes), macs)
    return found


def penalty_factors(layers, cost="weights", positions=None, heads=None):
    """`{key: factor}` that multiplies each layer's `lambda` for `cost`, for `{key: layer}`
    (masked or plain layers with a kernel): 1 for `"weights"`; `positions_l * W / M` for
    `"macs"` (module docstring), with `positions` from `positions_by_key` if given. `heads`
    (`head_costs`) prices head groups as whole heads. A ValueError names a bad cost, or a
    layer whose positions cannot be read."""
    check_cost(cost)
    heads = heads or {}
    sizes = {key: int(np.prod(_kernel_shape(layer))) for key, layer in layers.items()}
    weights = {key: heads[key][0] if key in heads else sizes[key] for key in layers}
    if cost == "weights" or not layers:
        return {key: weights[key] / sizes[key] for key in layers}
    if positions is None:
        positions = {key: kernel_positions(layer) for key, layer in layers.items()}
    macs = {}
    for key in layers:
        if positions[key] is None or (key in heads and heads[key][1] is None):
            raise ValueError(f"layer {key!r}: cannot weigh lambda by multiply-accumulates, "
                             "its shape per example is unknown (a variable length); use the "
                             "cost 'weights'.")
        macs[key] = heads[key][1] if key in heads else positions[key] * sizes[key]
    scale = sum(weights.values()) / sum(macs.values())
    return {key: macs[key] / sizes[key] * scale for key in layers}


def weigh_penalty(model, cost="weights", layers=None):
    """Scales the `lambda` (`mask_penalty` and `penalty_weight`) of `model`'s masked layers
    (or of `layers`, `{key: masked layer}`) by their `penalty_factors` for `cost`, computed
    over those layers (head groups priced as whole heads). Call it once, on layers that hold
    the same `lambda` (`sparsify(..., penalty_cost=...)` and `apps.search` do). A layer
    whose positions only a call can tell (one that another layer calls) is read in one call
    of `model` on zeros.
    Returns the factors."""
    layers = masked_layers_by_key(model) if layers is None else layers
    check_cost(cost)
    if cost.startswith("deployed_"):
        raise ValueError(f"penalty_cost {cost!r} is weighed by "
                         "keras_lottery.tickets.deployed_penalty.weigh_penalty.")
    positions = positions_by_key(model, layers) if cost == "macs" else None
    factors = penalty_factors(layers, cost, positions, head_costs(model, layers, positions))
    scale_penalty(layers, factors)
    return factors


def scale_penalty(layers, factors):
    """Multiplies the `lambda` (`mask_penalty`, `penalty_weight`) of each layer of
    `{key: masked layer}` by `factors[key]`."""
    for key, layer in layers.items():
        if factors[key] != 1.0:
            layer.mask_penalty = float(layer.mask_penalty * factors[key])
            layer.penalty_weight.assign(layer.mask_penalty)
