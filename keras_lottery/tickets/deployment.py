"""What a ticket buys at deployment: `export_deployment` writes the shrunk model and the
`.tflite` file beside an exported ticket and measures them against the dense network.

Latency is measured in this process, interleaved (each repeat times every model once, in
turn) and summarized by the median, because machines are shared and noisy: an absolute time
means little, a ratio measured in one run does. Keras models run through a closure-compiled
`tf.function` (a model passed as a default argument ran 15x slower at batch 1).
"""

import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_lottery import io_utils, saving
from keras_lottery.layers import masked_layers
from keras_lottery.tickets.convert import copy_model, strip
from keras_lottery.tickets.export import size_report
from keras_lottery.tickets.shrinking import ShrinkError, shrink
from keras_lottery.tickets.tflite import TFLiteModel, export_tflite


def keras_runner(model):
    """`model`'s inference as a compiled function of a batch (closure, not default argument):
    a `tf.function`, or on JAX `jax.jit` of `stateless_call`. A numpy batch becomes a tensor
    once (kept by `id`): timing a call times the model, not the copy of its input."""
    if keras.backend.backend() == "jax":
        import jax

        state = ([v.value for v in model.trainable_variables],
                 [v.value for v in model.non_trainable_variables])
        jitted = jax.jit(lambda t, f, x: model.stateless_call(t, f, x, training=False)[0])

        def run(x):
            return jitted(*state, x)
    else:
        @tf.function(reduce_retracing=True)
        def run(x):
            return model(x, training=False)

    tensors = {}

    def call(x):
        tensor = tensors.get(id(x))
        if tensor is None:
            tensor = tensors[id(x)] = (x, keras.ops.convert_to_tensor(x))
        return np.asarray(run(tensor[1]))

    return call


def median_latencies(runners, inputs, repeats=15):
    """`{name: {batch size: median seconds per call}}`, every runner timed once per repeat,
    in turn, after one warm-up call per input."""
    times = {name: {batch: [] for batch in inputs} for name in runners}
    for batch, x in inputs.items():
        for run in runners.values():
            run(x)
        for repeat in range(repeats):  # every other repeat in reverse: no runner always first
            order = list(runners.items())
            for name, run in order[::-1] if repeat % 2 else order:
                started = time.perf_counter()
                run(x)
                times[name][batch].append(time.perf_counter() - started)
    return {name: {batch: float(np.median(values)) for batch, values in per.items()}
            for name, per in times.items()}


def _file_bytes(save, suffix):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model" + suffix)
        save(path)
        return os.path.getsize(path)


def export_deployment(model, directory, batch_sizes=(1, 256), repeats=15, generate=0):
    """Writes `shrunk.keras` (when the ticket removes whole units) and `ticket.tflite` into
    `directory` (beside `tickets.export`'s files) and returns what they cost against the dense
    network of the same architecture: parameters, multiply-accumulates per example, file
    bytes, and the median latency ratio dense / ticket at each batch size, in Keras (the
    shrunk model, or the stripped ticket) and in TFLite. `repeats=0` measures no latency.
    `generate` (a causal language model's): also time generating that many tokens at batch 1
    (`generation_rates`)."""
    stripped = strip(model, warn_undecided=False)
    dense = strip(_all_kept(model), warn_undecided=False)
    deployed, shrunk, gone = _shrunk_ticket(stripped, directory)
    blocks = any(layer.mask_granularity == "block" for layer in masked_layers(model))
    dense_tflite = os.path.join(directory, ".dense.tflite")
    try:
        tflite = export_tflite(deployed, os.path.join(directory, "ticket.tflite"), sparse=blocks)
        export_tflite(dense, dense_tflite, sparse=False)
    except Exception as error:  # noqa: BLE001 - the converter's failures are many; keep the run
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        logging.warning("keras_lottery: no .tflite file for %s: %s", directory, reason)
        tflite = {"bytes": None, "fully_connected": {}, "error": reason}
    report = {
        "shrunk": {"units": {name: entry["kept"] for name, entry in shrunk["layers"].items()},
                   "parameters": shrunk["shrunk_parameters"]} if gone else (
                       {"error": shrunk["error"]} if "error" in shrunk else None),
        **_counts(dense, deployed),
        "file_bytes": {"dense_keras": _file_bytes(dense.save, ".keras"),
                       "stripped_keras": _file_bytes(stripped.save, ".keras"),
                       "shrunk_keras": os.path.getsize(os.path.join(directory, "shrunk.keras"))
                       if gone else None,
                       "dense_tflite": os.path.getsize(dense_tflite) if tflite["bytes"] else None,
                       "tflite": tflite["bytes"]},
        "tflite_fully_connected": tflite["fully_connected"],
    }
    if "error" in tflite:
        report["tflite_error"] = tflite["error"]
    if repeats and tflite["bytes"]:
        inputs = {b: _example_inputs(model, b) for b in batch_sizes}
        times = median_latencies(
            {"dense": keras_runner(dense), "ticket": keras_runner(deployed),
             "dense_tflite": TFLiteModel(dense_tflite), "ticket_tflite": TFLiteModel(
                 os.path.join(directory, "ticket.tflite"))}, inputs, repeats)
        report["speedup"] = {
            "keras": {str(b): times["dense"][b] / times["ticket"][b] for b in batch_sizes},
            "tflite": {str(b): times["dense_tflite"][b] / times["ticket_tflite"][b]
                       for b in batch_sizes}}
        if generate:
            report["generation"] = _generation_record(
                {"dense": keras_runner(dense), "ticket": keras_runner(deployed),
                 "dense_tflite": TFLiteModel(dense_tflite),
                 "ticket_tflite": TFLiteModel(os.path.join(directory, "ticket.tflite"))},
                _example_inputs(model, 1), generate, max(1, repeats // 5))
    io_utils.remove_path(dense_tflite)
    return report


def generate_greedily(run, window, length):
    """`length` tokens a causal language model `run` (a batch of id windows -> logits at every
    position) continues `window` (ids, shape (1, context)) with: each step feeds the last
    `context` ids and appends the most likely next one."""
    window, made = np.array(window), []
    for _ in range(length):
        logits = run(window)
        token = int(np.argmax(logits[0, -1]))
        made.append(token)
        window = np.concatenate([window[:, 1:], [[token]]], axis=1).astype(window.dtype)
    return made


def generation_rates(runners, window, length=128, repeats=3):
    """`{name: tokens per second}`: how fast each runner generates `length` tokens after
    `window` (`generate_greedily`), the median of `repeats` rounds that time every runner in
    turn."""
    rates = {name: [] for name in runners}
    for repeat in range(repeats):
        order = list(runners.items())
        for name, run in order[::-1] if repeat % 2 else order:
            started = time.perf_counter()
            generate_greedily(run, window, length)
            rates[name].append(length / (time.perf_counter() - started))
    return {name: float(np.median(values)) for name, values in rates.items()}


def load_deployed(path):
    """The network a saved ticket deploys as: the model at `path` (a search's `ticket.keras`,
    stripped: zeros where units were removed; a model saved with its masks, stripped here;
    or a `shrunk.keras`) shrunk, or as loaded when `shrink` cannot take units out of it. A
    one-line ValueError for a missing file."""
    if not os.path.isfile(path):
        raise ValueError(f"no such file {path!r}: give a saved ticket (ticket.keras) or a "
                         "shrunk model (shrunk.keras).")
    model = saving.load_model(path, compile=False)
    if masked_layers(model):
        model = strip(model, warn_undecided=False)
    try:
        return shrink(model)
    except ShrinkError:
        return model


def _shrunk_ticket(stripped, directory):
    """`(deployed model, shrink's report or {"error"}, whether units left)`: the stripped
    ticket shrunk (written as `shrunk.keras` when that removed anything), else itself."""
    try:
        small, shrunk = shrink(stripped, return_report=True)
    except ShrinkError as error:
        return stripped, {"error": str(error)}, False
    gone = shrunk["shrunk_parameters"] < shrunk["parameters"]
    if gone:
        io_utils.atomic_write(os.path.join(directory, "shrunk.keras"), small.save,
                              suffix=".keras")
    return (small if gone else stripped), shrunk, gone


def _generation_record(runners, window, length, repeats):
    """The deployment record's `generation`: tokens per second of the dense network and the
    ticket in Keras and TFLite (`generation_rates`), and the ticket's speedups."""
    rates = generation_rates(runners, window, length, repeats)
    return {"tokens": length, "tokens_per_second": rates,
            "speedup": {"keras": rates["ticket"] / rates["dense"],
                        "tflite": rates["ticket_tflite"] / rates["dense_tflite"]}}


def _counts(dense, deployed):
    """`parameters` and `macs_per_example` of the dense and the deployed network, each
    counted the same two ways: as stored and run densely (`dense`, `deployed`: the shrunk
    network for unit tickets, else the stripped one with its zeros) and its nonzero part
    (`dense_nonzero`, `deployed_nonzero`: what a sparse format or kernel would keep)."""
    counts = {"parameters": {}, "macs_per_example": {}}
    for name, network in (("dense", dense), ("deployed", deployed)):
        sizes = size_report(network)
        counts["parameters"][name] = int(network.count_params())
        counts["parameters"][f"{name}_nonzero"] = int(sum(
            np.count_nonzero(w) for w in network.get_weights()))
        counts["macs_per_example"][name] = sizes["dense_macs_per_example"]
        counts["macs_per_example"][f"{name}_nonzero"] = sizes["nonzero_macs_per_example"]
    return counts


def _example_inputs(model, batch):
    """`batch` random inputs for `model` (`random_batch` of its input's shape and type)."""
    return random_batch(tuple(model.inputs[0].shape[1:]), str(model.inputs[0].dtype), batch)


def random_batch(shape, dtype, batch, vocabulary=10):
    """`batch` random examples of `shape` (seeded by `batch`): floats in [0, 1), or token ids
    in 1..vocabulary-1 for an integer `dtype` (a text model)."""
    generator = np.random.RandomState(batch)
    if "int" in dtype:
        return generator.randint(1, vocabulary, size=(batch, *shape)).astype(dtype)
    return generator.rand(batch, *shape).astype("float32")


def _all_kept(model):
    """A copy of masked `model` whose masks keep every weight (the dense network)."""
    copy = copy_model(model, "export_deployment")
    for layer in masked_layers(copy):
        layer.set_ticket_mask(np.ones(layer.mask_logits.shape, bool))
    return copy
