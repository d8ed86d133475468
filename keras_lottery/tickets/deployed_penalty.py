"""`lambda` priced by what each mask group saves in the deployed network
(`penalty_cost="deployed_macs"` or `"deployed_parameters"`).

`"macs"` (`layers.costs`) prices a group by its own kernel's multiply-accumulates. With unit
masks that is not what removing it saves: a unit also takes the input rows of the layers that
read it out of the shrunk network, and a depthwise channel takes its expand conv's unit and
the project conv's input row along (in a MobileNetV2 at alpha 0.35 on 32x32 inputs, a late
depthwise channel saves 13-21x its own MACs, a `Conv_1` unit 1.1x). Priced by their own
kernels, cheap-looking groups that gate expensive ones are spared and the last 1x1 conv,
priced in full, is emptied first.

Here each layer `l` gets ``lambda_l = lambda * scale * saved_l / g_l``: `saved_l` is what
removing one of its groups takes out of the deployed network (`DeployedCost`: the shrunk
network for unit and head tickets, kept weights otherwise; every group of a layer saves the
same), `g_l` its group size (the penalty counts `g_l * m` per group), and
``scale = W / sum_l(n_l * saved_l)`` over the masked weights `W` and the layers' `n_l`
groups, so that at full density the total penalty equals the paper's (`"weights"`) and a
flagfile's `lambda` keeps its scale. A layer whose groups no cut can remove (the output layer)
is priced by its own kernel. An extension, not the paper's method.
"""

import numpy as np

from keras_lottery.layers import costs
from keras_lottery.layers.masked_layer import masked_layers_by_key
from keras_lottery.tickets.deployed_cost import DeployedCost

#: The deployed prices and the `DeployedCost` kind each counts.
DEPLOYED_COSTS = {"deployed_macs": "macs", "deployed_parameters": "parameters"}


def group_savings(cost):
    """Per masked layer of `cost` (a `DeployedCost`): what removing one of its groups takes
    out of the deployed network, or its own kernel's share where no cut can remove one."""
    everything = [np.ones(layer.mask_logits.shape, bool) for layer in cost.layers]
    full = cost.count(everything)
    savings = []
    for index, layer in enumerate(cost.layers):
        removable = np.flatnonzero(cost.removable[index].reshape(-1))
        groups = int(np.prod(layer.mask_logits.shape))
        if removable.size == 0:  # its own kernel's MACs or weights, per group
            savings.append(cost.dense_cost_of(layer) / groups)
            continue
        trial = [mask.copy() for mask in everything]
        trial[index].reshape(-1)[removable[0]] = False
        savings.append(float(full - cost.count(trial)))
    return savings


def penalty_factors(model, kind):
    """`{layer key: factor}` of every masked layer of `model` for prices in `kind`
    (`"macs"` or `"parameters"`): `scale * saved_l / g_l` (module docstring)."""
    cost = DeployedCost(model, kind)
    savings = group_savings(cost)
    keys = {id(layer): key for key, layer in masked_layers_by_key(model).items()}
    weights = sum(float(np.prod(layer.unmasked_kernel.shape)) for layer in cost.layers)
    priced = sum(saved * int(np.prod(layer.mask_logits.shape))
                 for layer, saved in zip(cost.layers, savings))
    scale = weights / priced if priced else 1.0
    return {keys[id(layer)]: scale * saved / layer.group_size
            for layer, saved in zip(cost.layers, savings)}


def weigh_penalty(model, cost="weights", layers=None):
    """Scales the `lambda` of `model`'s masked layers (or of `layers`, `{key: masked layer}`)
    by their price for `cost`: `"weights"` and `"macs"` as `layers.costs.weigh_penalty`,
    `"deployed_macs"` and `"deployed_parameters"` by what their groups save in the deployed
    network (`penalty_factors`, over every masked layer of `model`). Call it once. Returns the
    factors."""
    costs.check_cost(cost)
    if cost not in DEPLOYED_COSTS:
        return costs.weigh_penalty(model, cost, layers)
    every = penalty_factors(model, DEPLOYED_COSTS[cost])
    layers = masked_layers_by_key(model) if layers is None else layers
    factors = {key: every.get(key, 1.0) for key in layers}
    costs.scale_penalty(layers, factors)
    return factors
