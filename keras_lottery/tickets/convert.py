"""`sparsify` a Keras model into a masked one, and `strip` a masked model back.

Any built Keras model: Sequential, functional, subclassed, keras-hub. Every `Dense`,
`EinsumDense`, `Conv1D`, `Conv2D` and `DepthwiseConv2D` found by walking the model's layers
(attention's query, key, value and output projections included) is masked in place
(`keras_lottery.layers.in_place`): the model keeps its class and its methods (a keras-hub
`GPT2CausalLM` still `generate`s).

- `sparsify(model)` returns a masked copy of `model` (the original untouched);
  `sparsify(model, in_place=True)` masks `model` itself. Masked layers start at `s = s0`,
  `beta = 1` and hold the model's weights.
- `strip(model)` returns a plain copy of the same class whose kernels are `c * w * b(s)`:
  the ticket folded into the weights, no mask variables, no keras_lottery class, plain-Keras
  speed. For binary masks (fixed or stochastic rule, or a CS model whose `sigmoid(beta * s)`
  has saturated) its outputs equal the masked model's inference outputs bit for bit; where
  a CS mask has not saturated they differ, and `strip` warns how many groups are undecided.
"""

import warnings

import keras
import numpy as np

from keras_lottery import compat, methods
from keras_lottery.layers import (
    MASKED_CLASSES,
    MaskedLayer,
    attention,
    costs,
    mask_in_place,
    maskable,
    masked_layers,
)
from keras_lottery.layers.in_place import check_maskable, mask_arguments_of, unmask_in_place
from keras_lottery.layers.mask_rules import kept
from keras_lottery.tickets import deployed_penalty

#: The registered names of the masked classes, as they appear in a model's config.
_MASKED_NAMES = {f"keras_lottery>{masked.__name__}": plain for plain, masked in
                 MASKED_CLASSES.items()}


def _check_model(model, who):
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who} expects a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(f"{who}: build the model first (give it an Input or call it once).")


def _map_masked_configs(config, change):
    """`config` with `change(entry)` in place of every masked layer's entry."""
    if isinstance(config, list):
        return [_map_masked_configs(item, change) for item in config]
    if not isinstance(config, dict):
        return config
    if config.get("registered_name") in _MASKED_NAMES and isinstance(config.get("config"), dict):
        return change(config)
    return {key: _map_masked_configs(value, change) for key, value in config.items()}


def _plain_entry(entry):
    """A masked layer's config entry as its plain Keras layer's."""
    plain = _MASKED_NAMES[entry["registered_name"]]
    return dict(entry, module="keras.layers", class_name=plain.__name__, registered_name=None,
                config={key: value for key, value in entry["config"].items()
                        if key not in MaskedLayer.MASK_ARGUMENTS})


def _rebuild(model, who, change=None):
    """A new, built, uncompiled model of `model`'s class from its config (each masked layer's
    entry passed through `change`), paired layer by layer with `model`'s."""
    config = model.get_config()
    try:
        clone = type(model).from_config(_map_masked_configs(config, change) if change
                                        else config)
        if not clone.built:
            clone.build_from_config(model.get_build_config())
    except Exception as error:  # a subclassed model without a usable get_config
        reason = str(error).strip().splitlines()[-1][:200] if str(error).strip() else ""
        raise ValueError(f"{who}: cannot rebuild {type(model).__name__} from its config "
                         f"({type(error).__name__}: {reason}); give it get_config and "
                         "from_config, or use in_place=True.") from None
    layers, clone_layers = compat.flatten_layers(model), compat.flatten_layers(clone)
    if len(layers) != len(clone_layers):
        raise ValueError(f"{who}: {type(model).__name__} rebuilt from its config has other "
                         "layers than the model.")
    return clone, list(zip(layers, clone_layers))


def _copy_own_variables(source, target):
    """`source`'s variables into `target`'s, as copies: under JAX a variable's value is a
    buffer that a jitted `predict` or `fit` of the model holding it may donate (delete), so two
    models must not share one."""
    store = {}
    source.save_own_variables(store)
    target.load_own_variables({key: np.array(keras.ops.convert_to_numpy(
        getattr(value, "value", value))) for key, value in store.items()})


def copy_model(model, who="copy_model", mask_overrides=None, copy_weights=True):
    """A copy of `model` of the same class with the same masked layers (their mask
    arguments updated by `mask_overrides`, e.g. `{"mask_rule": "fixed"}`), and with the
    same weights unless `copy_weights=False` (fresh initialization)."""
    overrides = dict(mask_overrides or {})

    def change(entry):
        return dict(entry, config={**entry["config"], **overrides})

    clone, pairs = _rebuild(model, who, change if overrides else None)
    for source, target in pairs:
        if isinstance(source, MaskedLayer) and not isinstance(target, MaskedLayer):
            mask_in_place(target, **{**mask_arguments_of(source), **overrides})
        if copy_weights:
            _copy_own_variables(source, target)
    return clone


def sparsify(model, method="cs", mask_init=None, mask_penalty=0.0, exclude=(),
             mask_scaling=False, mask_granularity="weight", in_place=False,
             penalty_cost="weights", shrinkable_only=True):
    """Masks every Dense, EinsumDense and convolution kernel of `model`.

    Args:
        model: a built Keras model (Sequential, functional, subclassed, keras-hub).
        method: `"cs"` (continuous masks), `"iss"` (stochastic), `"imp"` or `"random"`
            (fixed binary masks starting dense).
        mask_init: `s0` (default: the method's: -0.01 for CS, whose fresh ticket so keeps
            nothing until training raises `s` above 0; 1.0 for ISS and IMP, all kept).
        mask_penalty: `lambda` (ignored by IMP).
        exclude: names or keys (`"block_0/attention/query"`) of layers to leave plain;
            a warning names the Dense and EinsumDense kernels left unmasked.
        mask_granularity: `"weight"`, `"unit"` (whole neurons, filters and attention heads
            (`layers.attention`), which `shrink` removes) or `"block"` (1x4 blocks of inputs,
            Dense only; TFLite keeps them sparse).
        mask_scaling: CS only: scale the mask by `1/sigmoid(s0)` (the official CS
            code's `mask_scale`), so that the outputs at the start equal `model`'s: a
            trained model stays trained. Without it, CS's start `sigmoid(s0)` multiplies
            every kernel (by 1/2 at s0 = 0).
        in_place: mask `model` itself (recompile it before training) instead of a copy.
        penalty_cost: `"weights"` (the paper: `lambda` per weight) or `"macs"`: each layer's
            `lambda` is scaled by its multiply-accumulates per weight
            (`keras_lottery.layers.costs`); `"deployed_macs"`, `"deployed_parameters"`: by
            what removing one of its groups saves in the deployed network
            (`keras_lottery.tickets.deployed_penalty`).
        shrinkable_only: with `unit` masks, leave plain (with a warning) the layers whose units
            `shrink` could not remove (a dry run: `tickets.unit_plan`); not the output layer.

    Returns the masked model, of `model`'s class. Layers with LoRA enabled or quantized are
    refused with one line naming the layer.
    """
    _check_model(model, "sparsify")
    mask_kwargs = methods.get(method)().layer_arguments(
        mask_init, mask_penalty, mask_scaling=mask_scaling, mask_granularity=mask_granularity)
    keyed = compat.keyed_layers(model)
    chosen, arguments, left = _chosen(model, keyed, exclude, mask_kwargs, shrinkable_only)
    for i in chosen:  # every refusal before any change
        check_maskable(keyed[i][1], keyed[i][0], **arguments[i])
    costs.check_cost(penalty_cost)
    _warn_unmasked(keyed, chosen, set(exclude) | left)
    target = model if in_place else copy_model(model, "sparsify")
    layers = [layer for _, layer in compat.keyed_layers(target)]  # the order of `keyed`
    for i in chosen:
        mask_in_place(layers[i], keyed[i][0], **arguments[i])
    compat.reset_compiled_functions(target)
    try:
        deployed_penalty.weigh_penalty(target, penalty_cost,
                                       {keyed[i][0]: layers[i] for i in chosen})
    except ValueError:
        if in_place:  # a refusal leaves `model` as it was
            for i in chosen:
                unmask_in_place(layers[i], layers[i].unmasked_kernel, layers[i].bias)
            compat.reset_compiled_functions(target)
        raise
    return target


def _chosen(model, keyed, exclude, mask_kwargs, shrinkable_only):
    """`(indices into keyed to mask, {index: mask arguments}, keys left plain on purpose)`:
    the maskable layers not in `exclude`; with unit masks, not those whose units `shrink`
    could not remove (`_shrinkable`), and an attention layer's output projection takes
    `head` groups while its query, key and value projections stay plain (`layers.attention`)."""
    known = {name for key, layer in keyed for name in (key, layer.name)}
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise ValueError(f"exclude names layers {unknown} that the model does not have.")
    granularity = mask_kwargs["mask_granularity"]
    chosen = [i for i, (key, layer) in enumerate(keyed)
              if maskable(layer) and not {key, layer.name} & set(exclude)]
    chosen, idle = _shrinkable(model, keyed, chosen, granularity == "unit" and shrinkable_only)
    by_projection = attention.granularity_of_projections(model, granularity)
    covered = {keyed[i][0] for i in chosen if by_projection.get(id(keyed[i][1]), 1) is None}
    chosen = [i for i in chosen if keyed[i][0] not in covered]
    arguments = {i: {**mask_kwargs, "mask_granularity": by_projection.get(
        id(keyed[i][1]), granularity)} for i in chosen}
    return chosen, arguments, covered | idle


def _shrinkable(model, keyed, chosen, dry_run):
    """`(chosen without the layers whose units shrink could not remove, their names)`; warns
    of them. Without `dry_run`: `(chosen, set())`."""
    if not dry_run:
        return chosen, set()
    from keras_lottery.tickets.unit_plan import idle_unit_layers

    idle = idle_unit_layers(model)
    left = [keyed[i] for i in chosen if keyed[i][1] in idle]
    if left:
        reasons = "; ".join(f"{key}: {idle[layer]}" for key, layer in left[:3])
        warnings.warn(f"sparsify: {len(left)} layer(s) left without unit masks, since shrink "
                      f"could not remove their units ({reasons}"
                      f"{'; ...' if len(left) > 3 else ''}); pass shrinkable_only=False to "
                      "mask them anyway.", stacklevel=4)
    return [i for i in chosen if keyed[i][1] not in idle], {key for key, _ in left}


def _warn_unmasked(keyed, chosen, excluded):
    """Warns of Dense/EinsumDense kernels left plain that the user did not exclude."""
    kernels = (keras.layers.Dense, keras.layers.EinsumDense)
    left = [key for i, (key, layer) in enumerate(keyed)
            if isinstance(layer, kernels) and not isinstance(layer, MaskedLayer)
            and i not in set(chosen) and not {key, layer.name} & excluded]
    if left:
        warnings.warn(f"sparsify leaves {len(left)} Dense/EinsumDense kernels unmasked: "
                      f"{left}.", stacklevel=3)


def strip(model, in_place=False, warn_undecided=True):
    """Returns a plain Keras copy of `model` (its class) with every kernel `c * w * b(s)`.

    The result has no mask variables and no keras_lottery layers, and is not compiled
    (compile it as you like): saved, it loads with `keras.saving.load_model` in any
    process without keras_lottery (a keras-hub model with keras-hub alone), and runs at
    plain-Keras speed. With `in_place`, `model` itself becomes that plain model (for a
    subclassed model that cannot be rebuilt from its config). Unless `warn_undecided` is
    False, a warning counts the CS mask groups whose soft mask has not saturated: there the
    stripped ticket computes differently from `model` (the callers that want the ticket
    itself, `shrink`, `export`, `export_tflite`, pass False).
    """
    _check_model(model, "strip")
    if warn_undecided:
        _warn_undecided(model)
    if in_place:
        for layer in masked_layers(model):
            unmask_in_place(layer, stripped_kernel(layer),
                            stripped_bias(layer) if layer.bias is not None else None)
        compat.reset_compiled_functions(model)
        return model
    plain, pairs = _rebuild(model, "strip", _plain_entry)
    for source, target in pairs:
        if isinstance(source, MaskedLayer):
            values = [stripped_kernel(source)] + (
                [stripped_bias(source)] if source.bias is not None else [])
            target.load_own_variables({str(i): value for i, value in enumerate(values)})
        else:
            _copy_own_variables(source, target)
    return plain


#: How far the inference mask may be from the ticket before `strip` warns.
UNDECIDED_TOLERANCE = 1e-3


def _warn_undecided(model):
    layers = masked_layers(model)
    undecided = sum(layer.undecided_groups(UNDECIDED_TOLERANCE) for layer in layers)
    if undecided:
        total = sum(int(np.prod(layer.mask_logits.shape)) for layer in layers)
        warnings.warn(
            f"strip: {undecided:,} of {total:,} mask groups have not saturated (the soft mask "
            f"sigmoid(beta*s) is more than {UNDECIDED_TOLERANCE:g} from the ticket 1[s > 0] at "
            "the current beta), so the stripped ticket's outputs differ from the masked "
            "model's; anneal beta further (final_temperature) or train longer.", stacklevel=3)


def stripped_kernel(layer):
    """The kernel of a masked layer's ticket: `c * w * b(s)`."""
    kernel = layer.unmasked_kernel.numpy()
    return kernel * (layer.ticket_mask() * layer.mask_scale).astype(kernel.dtype)


def stripped_bias(layer):
    """The bias of a masked layer's ticket: with unit masks, removed units' biases are 0."""
    bias = layer.bias.numpy()
    if layer.granularity.gates_bias:
        gate = kept(layer.mask_logits.numpy()).reshape(bias.shape) * layer.mask_scale
        bias = bias * gate.astype(bias.dtype)
    return bias
