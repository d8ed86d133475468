"""What a ticket costs: `size_report` (weights, bytes, multiply-accumulates) and `export` (the
stripped `.keras` model, the masks and the report, written atomically)."""

import os

import keras
import numpy as np

from keras_lottery import compat, io_utils
from keras_lottery.layers import MaskedLayer, attention, costs
from keras_lottery.tickets.convert import MASKED_CLASSES, strip
from keras_lottery.tickets.masks import extract_masks, save_masks


def size_report(model):
    """Sizes of the ticket in `model` (masked, or stripped with zeros in the kernels).

    Returns a dict with, per maskable layer, the weights kept and the nonzero
    multiply-accumulates per example, and overall: `remaining` (fraction of
    maskable weights kept), `dense_bytes` (all weights stored densely),
    `ticket_bytes` (each kernel stored the cheaper way: its kept entries plus a
    1-bit-per-weight mask, or dense; other weights dense, so a dense model's ticket
    is as large as the model), `dense_macs_per_example` and `nonzero_macs_per_example`
    (the kernels' MACs, plus each attention layer's own, `costs.attention_macs`: all its heads
    when dense, those its output projection still reads when nonzero).
    """
    layers, kept_total, maskable_total, live_heads = [], 0, 0, {}
    dense_bytes = ticket_bytes = dense_macs = nonzero_macs = 0
    keyed = compat.keyed_layers(model)
    outputs = {f"{key}/{attention.projections(layer)[3].name}": key for key, layer in keyed
               if isinstance(layer, keras.layers.MultiHeadAttention)}
    positions_of = costs.positions_by_key(model, {k: v for k, v in keyed if _has_kernel(v)})
    for key, layer in keyed:
        if isinstance(layer, keras.Model):
            continue
        parts = _kernel_parts(layer)
        if parts is None:
            size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                       for v in compat.own_variables(layer))  # not its children's
            dense_bytes, ticket_bytes = dense_bytes + size, ticket_bytes + size
            continue
        kernel, mask, others = parts
        itemsize = kernel.dtype.itemsize
        kept = int(mask.sum())
        if key in outputs:  # (heads, value_dim, outputs): the attention's heads still read
            live_heads[outputs[key]] = int(np.any(
                (kernel * mask).reshape(kernel.shape[0], -1) != 0, axis=1).sum())
        other_bytes = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in others)
        dense_bytes += kernel.size * itemsize + other_bytes
        ticket_bytes += min(kernel.size * itemsize,
                            kept * itemsize + (kernel.size + 7) // 8) + other_bytes
        positions = positions_of[key]
        entry = {"name": key, "type": type(layer).__name__, "kept": kept,
                 "total": int(kernel.size), "remaining": kept / kernel.size if kernel.size else 1.0}
        if positions is not None:
            entry["nonzero_macs_per_example"] = kept * positions
            dense_macs += kernel.size * positions
            nonzero_macs += kept * positions
        layers.append(entry)
        kept_total += kept
        maskable_total += kernel.size
    dense_macs += costs.attention_macs(keyed, positions_of)
    nonzero_macs += costs.attention_macs(keyed, positions_of, live_heads)
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


def _has_kernel(layer):
    """Whether `layer` is masked or a plain layer with a kernel that could be."""
    return isinstance(layer, MaskedLayer) or type(layer) in MASKED_CLASSES


def _kernel_parts(layer):
    """`(kernel w, ticket mask, other weights)` of a masked layer or of a plain one with a
    kernel (its zeros removed), or None for any other layer."""
    if isinstance(layer, MaskedLayer):
        skip = {id(v) for v in layer.mask_variables()} | {id(layer.unmasked_kernel)}
        return (layer.unmasked_kernel.numpy(), layer.ticket_mask(),
                [v for v in layer.weights if id(v) not in skip])
    if type(layer) in MASKED_CLASSES:
        kernel = layer.get_weights()[0]
        return kernel, kernel != 0, layer.weights[1:]
    return None


def export(model, directory):
    """Exports the ticket of the masked `model` into `directory`.

    Writes (each atomically) `ticket.keras` (the stripped plain-Keras model,
    kernels `w * b(s)`), `masks.npz` (`b(s)` per layer) and `report.json`
    (`size_report`). Returns the report.
    """
    stripped = strip(model, warn_undecided=False)
    report = size_report(model)
    save_masks(os.path.join(directory, "masks.npz"), extract_masks(model))
    io_utils.atomic_write(os.path.join(directory, "ticket.keras"), stripped.save,
                          suffix=".keras")
    io_utils.write_json(os.path.join(directory, "report.json"), report)
    return report
