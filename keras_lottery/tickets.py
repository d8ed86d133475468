"""Tickets: binary masks `b(s)` of a model, their `.npz` files, and ticket models.

A ticket is a mask per masked layer (`{layer name: bool array}`) plus the
weights it is retrained from (`w_0` or `w_k`). `build_ticket` turns a searched
model into a ticket model: the same architecture with every mask fixed
(`mask_rule="fixed"`), so the removed weights stay zero in effect while the
kept ones train.
"""

import os

import keras
import numpy as np

from keras_lottery import compat, io_utils
from keras_lottery import weights as weights_lib
from keras_lottery.layers import MaskedLayer, masked_layers


def extract_masks(model):
    """Returns the ticket masks `{layer name: b(s) as a bool array}` of `model`."""
    return {layer.name: layer.ticket_mask() for layer in masked_layers(model)}


def remaining_fraction(masks):
    """Fraction of maskable weights kept by `masks` (0..1)."""
    total = sum(mask.size for mask in masks.values())
    return float(sum(int(mask.sum()) for mask in masks.values()) / total) if total else 1.0


def save_masks(path, masks):
    """Writes `masks` to a compressed `.npz` file (atomically, no pickle)."""

    def write(tmp_path):
        with open(tmp_path, "wb") as handle:
            np.savez_compressed(handle, **{name: np.asarray(m, bool) for name, m in masks.items()})

    io_utils.atomic_write(path, write, suffix=".npz")


def load_masks(path):
    """Reads masks written by `save_masks` (`allow_pickle=False`)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name].astype(bool) for name in data.files}


def apply_masks(model, masks):
    """Sets the ticket masks of `model`'s masked layers; names and shapes must match."""
    layers = {layer.name: layer for layer in masked_layers(model)}
    missing = sorted(set(layers) - set(masks))
    unknown = sorted(set(masks) - set(layers))
    if missing or unknown:
        raise ValueError(
            f"Ticket masks do not match the model: missing {missing}, unknown {unknown}."
        )
    for name, mask in masks.items():
        layers[name].set_ticket_mask(mask)


def _with_fixed_masks(layer):
    config = layer.get_config()
    if isinstance(layer, MaskedLayer):
        config["mask_rule"] = "fixed"
        config["mask_penalty"] = 0.0
    return layer.__class__.from_config(config)


def build_ticket(model, masks, weights=None):
    """Returns the ticket of `model`: a clone whose masks are fixed to `masks`.

    Args:
        model: a Sequential or functional model built from masked layers.
        masks: `{layer name: bool array}` (from `extract_masks` or `load_masks`).
        weights: a `keras_lottery.weights.snapshot` to start from (`w_0`, `w_k`);
            None keeps the clone's fresh initialization.
    """
    ticket = keras.models.clone_model(model, clone_function=_with_fixed_masks)
    if weights is not None:
        weights_lib.restore(ticket, weights)
    apply_masks(ticket, masks)
    return ticket


def _spatial_positions(layer):
    """Output positions at which `layer` applies its kernel once per example."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    if isinstance(layer, keras.layers.Dense):
        dims = shape[1:-1]
    elif getattr(layer, "data_format", "channels_last") == "channels_first":
        dims = shape[2:]
    else:
        dims = shape[1:-1]
    if any(d is None for d in dims):
        return None
    return int(np.prod(dims)) if dims else 1


def size_report(model):
    """Sizes of the ticket in `model` (masked, or stripped with zeros in the kernels).

    Returns a dict with, per maskable layer, the weights kept and the nonzero
    multiply-accumulates per example, and overall: `remaining` (fraction of
    maskable weights kept), `dense_bytes` (all weights stored densely),
    `ticket_bytes` (kept kernel entries plus a 1-bit-per-weight mask, other
    weights dense), `dense_macs_per_example` and `nonzero_macs_per_example`.
    """
    from keras_lottery.convert import MASKED_CLASSES

    layers, kept_total, maskable_total = [], 0, 0
    dense_bytes = ticket_bytes = dense_macs = nonzero_macs = 0
    for layer in compat.flatten_layers(model):
        if isinstance(layer, keras.Model):
            continue
        if isinstance(layer, MaskedLayer):
            kernel = layer.unmasked_kernel.numpy()
            mask = layer.ticket_mask()
            skip = {id(v) for v in layer.mask_variables()} | {id(layer.unmasked_kernel)}
            others = [v for v in layer.weights if id(v) not in skip]
        elif type(layer) in MASKED_CLASSES:
            kernel = layer.get_weights()[0]
            mask = kernel != 0
            others = layer.weights[1:]
        else:
            for variable in layer.weights:
                size = int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
                dense_bytes += size
                ticket_bytes += size
            continue
        itemsize = kernel.dtype.itemsize
        kept = int(mask.sum())
        other_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in others)
        dense_bytes += kernel.size * itemsize + other_bytes
        ticket_bytes += kept * itemsize + (kernel.size + 7) // 8 + other_bytes
        positions = _spatial_positions(layer)
        entry = {"name": layer.name, "type": type(layer).__name__, "kept": kept,
                 "total": int(kernel.size), "remaining": kept / kernel.size if kernel.size else 1.0}
        if positions is not None:
            entry["nonzero_macs_per_example"] = kept * positions
            dense_macs += kernel.size * positions
            nonzero_macs += kept * positions
        layers.append(entry)
        kept_total += kept
        maskable_total += kernel.size
    return {
        "remaining": kept_total / maskable_total if maskable_total else 1.0,
        "kept_weights": kept_total,
        "maskable_weights": maskable_total,
        "dense_bytes": dense_bytes,
        "ticket_bytes": ticket_bytes,
        "dense_macs_per_example": dense_macs,
        "nonzero_macs_per_example": nonzero_macs,
        "layers": layers,
    }


def export(model, directory):
    """Exports the ticket of the masked `model` into `directory`.

    Writes (each atomically) `ticket.keras` (the stripped plain-Keras model,
    kernels `w * b(s)`), `masks.npz` (`b(s)` per layer) and `report.json`
    (`size_report`). Returns the report.
    """
    from keras_lottery.convert import strip

    stripped = strip(model)
    report = size_report(model)
    save_masks(os.path.join(directory, "masks.npz"), extract_masks(model))
    io_utils.atomic_write(os.path.join(directory, "ticket.keras"), stripped.save,
                          suffix=".keras")
    io_utils.write_json(os.path.join(directory, "report.json"), report)
    return report


class RunTicket:
    """Round r's ticket of a run directory (`load_run`).

    Attributes:
        model: the ticket model: the run's architecture with round r's masks fixed
            (`mask_rule="fixed"`), its weights at `start_weights`; not compiled.
        masks: `{layer name: bool array}`, round r's `b(s)`.
        start_weights: the snapshot the run retrains tickets from (`w_k`, k =
            `--ticket_epoch`; `w_0` when k = 0).
        initial_weights: `w_0`.
        config: the run's `SearchConfig`; record: round r's record in `results.json`.
    """

    def __init__(self, model, masks, start_weights, initial_weights, config, record):
        self.model, self.masks = model, masks
        self.start_weights, self.initial_weights = start_weights, initial_weights
        self.config, self.record = config, record


def load_run(run_dir, round=None):  # noqa: A002  (the paper's word for it)
    """Rebuilds round `round`'s ticket (default: the last finished round) of a search's run
    directory: the model with its masks and the weights it is retrained from.

        ticket = tickets.load_run("runs/quickstart", round=2)
        ticket.model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        ticket.model.fit(...)   # round 2's ticket, retrained later

    Raises a one-line `FileNotFoundError` naming what is missing.
    """
    import json

    from keras_lottery import training
    from keras_lottery.config import SearchConfig
    from keras_lottery.rundir import RunDirectory

    directory = RunDirectory(run_dir)
    try:
        with open(directory.results_path) as handle:
            results = json.load(handle)
    except OSError:
        raise FileNotFoundError(f"{run_dir!r} holds no results.json: not a finished or "
                                "running search directory.") from None
    finished = [record["round"] for record in results["rounds"]]
    round_index = finished[-1] if round is None and finished else round
    if round_index not in finished:
        raise FileNotFoundError(f"{run_dir!r} has no round {round!r}; its finished rounds are "
                                f"{finished}.")
    config = SearchConfig.from_dict(results["flags"])
    shape = results.get("model")
    if shape is None:
        raise FileNotFoundError(f"{run_dir!r} was written before runs recorded their model's "
                                "input shape; rerun the search to rebuild its tickets.")
    paths = {"w_0": directory.initial_weights_path(),
             "masks": directory.masks_path(round_index),
             "start": directory.snapshot_path(config.ticket_epoch)}
    missing = [f"{name} ({path})" for name, path in paths.items()
               if not os.path.exists(path) and not (name == "start" and config.ticket_epoch == 0)]
    if missing:
        raise FileNotFoundError(f"{run_dir!r} lacks {', '.join(missing)}.")
    initial = weights_lib.load_snapshot(paths["w_0"])
    start = initial if config.ticket_epoch == 0 else weights_lib.load_snapshot(paths["start"])
    masks = load_masks(paths["masks"])
    searched = training.build_model(config, tuple(shape["input_shape"]), shape["num_classes"])
    model = build_ticket(searched, masks, start)
    return RunTicket(model, masks, start, initial, config,
                     results["rounds"][finished.index(round_index)])
