"""TFLite files of tickets: `export_tflite` (TensorFlow's converter) and `TFLiteModel` (the
`ai-edge-litert` runtime, the maintained TFLite interpreter on PyPI).

A ticket with `block` masks (1x4 blocks of a Dense unit's inputs) is converted with the
converter's sparsity optimization, which stores those fully connected weights in block-sparse
form; the sparse kernels then skip the removed blocks. `export_tflite` checks every fully
connected layer of the file: its weights are read sparse, or they are stored dense, or a
DENSIFY op turns them dense before use (then nothing is gained), and it says which.
"""

import contextlib
import io
import os
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_lottery import compat, io_utils
from keras_lottery.layers import masked_layers
from keras_lottery.tickets.convert import strip


def _converter(model, directory):
    """TensorFlow's TFLite converter for `model`: from the Keras model on TensorFlow (one
    input); from the SavedModel Keras exports into `directory` for a model of named inputs
    (a shrunk keras-hub model) and on JAX (through jax2tf: the converter legalizes its
    StableHLO into TFLite's ops)."""
    if keras.backend.backend() == "tensorflow" and len(model.inputs) == 1:
        return tf.lite.TFLiteConverter.from_keras_model(model)
    model.export(directory, format="tf_saved_model", verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(directory)


def _convert(model, sparse):
    verbosity = logging.get_verbosity()
    # the converter logs every step at INFO; jax2tf's SavedModel warns of its gradients
    logging.set_verbosity(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="keras_lottery_tflite_") as directory, \
                contextlib.redirect_stdout(io.StringIO()):  # Keras prints the signature
            converter = _converter(model, directory)
            if sparse:
                converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
            return converter.convert()
    finally:
        logging.set_verbosity(verbosity)


def _interpreter(content, threads=1):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def fully_connected_storage(content, layer_names):
    """`{layer name: "sparse" | "densified" | "dense"}` for the FULLY_CONNECTED ops of a
    `.tflite` file, in order, named by `layer_names` (the model's Dense layers in order)."""
    interpreter = _interpreter(content)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = compat.tflite_ops(interpreter)
    densified = {output for op in ops if op["op_name"] == "DENSIFY" for output in op["outputs"]}
    storage = []
    for op in ops:
        if op["op_name"] != "FULLY_CONNECTED":
            continue
        weights = op["inputs"][1]
        if weights in densified:
            storage.append("densified")
        elif tensors[weights].get("sparsity_parameters"):
            storage.append("sparse")
        else:
            storage.append("dense")
    return dict(zip(layer_names, storage))


def export_tflite(model, path, sparse=None):
    """Writes `model`'s ticket as a `.tflite` file (float32) at `path`, atomically.

    Args:
        model: a masked model (stripped first: kernels `w * b(s)`), or a plain one (a
            stripped or `shrink`-ed ticket).
        path: the file to write; its folder must exist.
        sparse: use the converter's sparsity optimization; by default when a masked layer
            has `block` masks.

    Returns `{"path", "bytes", "fully_connected": {layer: storage}}`; a masked block layer
    that did not come out sparse is named in a warning.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist.")
    blocks = [layer.name for layer in masked_layers(model) if layer.mask_granularity == "block"]
    plain = strip(model, warn_undecided=False) if masked_layers(model) else model
    sparse = bool(blocks) if sparse is None else bool(sparse)
    content = _convert(plain, sparse)
    dense_layers = [layer.name for layer in plain.layers if isinstance(layer, keras.layers.Dense)]
    storage = fully_connected_storage(content, dense_layers)
    stayed = [name for name in blocks if storage.get(name) != "sparse"]
    if sparse and stayed:
        warnings.warn(f"export_tflite: block-masked layers {stayed} stayed dense in "
                      f"{path} ({', '.join(storage[n] for n in stayed)}); the converter keeps "
                      "1x4 blocks sparse only where enough of them are removed.", stacklevel=2)
    def write(tmp_path):
        with open(tmp_path, "wb") as handle:
            handle.write(content)

    io_utils.atomic_write(path, write, suffix=".tflite")
    return {"path": path, "bytes": len(content), "fully_connected": storage}


class TFLiteModel:
    """A `.tflite` file run by `ai-edge-litert`: `model(x)` for a batch of any size (cast to
    the model's input type: float32 images, int32 token ids); `x` a dict of named inputs for
    a model that has several (a shrunk keras-hub model's `token_ids`, `padding_mask`).

    Args:
        path_or_content: the file, or its bytes.
        threads: the interpreter's threads.
    """

    def __init__(self, path_or_content, threads=1):
        content = path_or_content
        if isinstance(path_or_content, (str, os.PathLike)):
            with open(path_or_content, "rb") as handle:
                content = handle.read()
        self.interpreter = _interpreter(content, threads)
        self._inputs = self.interpreter.get_input_details()
        self._output = self.interpreter.get_output_details()[0]
        self._shapes = None

    def _arrays(self, x):
        """`[(input detail, array)]` for `x`, a dict matched to the inputs by name."""
        if not isinstance(x, dict):
            return [(self._inputs[0], np.asarray(x, self._inputs[0]["dtype"]))]
        found = []
        for detail in self._inputs:
            keys = [key for key in x if key in detail["name"]]
            if len(keys) != 1:
                raise ValueError(f"TFLiteModel: input {detail['name']!r} matches {keys or 'none'} "
                                 f"of the given {sorted(x)}.")
            found.append((detail, np.asarray(x[keys[0]], detail["dtype"])))
        return found

    def __call__(self, x):
        arrays = self._arrays(x)
        shapes = [array.shape for _, array in arrays]
        if shapes != self._shapes:
            for detail, array in arrays:
                self.interpreter.resize_tensor_input(detail["index"], array.shape)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for detail, array in arrays:
            self.interpreter.set_tensor(detail["index"], array)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"])
