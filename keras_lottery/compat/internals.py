"""Keras internals outside `tf.distribute` that keras_lottery relies on: walking a model's
layers and variables, unlocking a built layer, compiled functions, optimizer slots, reading a
saved archive (pinned by tests/test_compat.py)."""

import contextlib


def flatten_layers(model, include_self=False):
    """Every layer inside `model` once, depth first, nested models and sublayers of custom
    layers included (Keras's `Layer._flatten_layers`; the public `Model.layers` lists the
    top level only)."""
    return list(model._flatten_layers(include_self=include_self, recursive=True))


def is_functional(model):
    """Whether `model` is a functional model (Keras has no public name for the class)."""
    from keras.src.models.functional import Functional

    return isinstance(model, Functional)


def optimizer_own_variables(optimizer):
    """The variables a Keras optimizer created itself (step count, learning rate, its slots),
    not those of optimizers it wraps: what `MaskOptimizer.variables` adds its two optimizers' to."""
    return list(optimizer._variables)


def optimizer_trainable_variables(optimizer):
    """The variables a built Keras optimizer updates (what `apply(grads)` without them means)."""
    return optimizer._trainable_variables


def keyed_layers(model):
    """`(key, layer)` for every layer inside `model` once, in `flatten_layers`' order. A key is
    the names from `model` down to the layer joined by "/" (`"block_0/attention/query"`):
    unlike `layer.name` it does not repeat across blocks, and unlike `layer.path` it does not
    depend on the name scope the layer was built in. A top-level layer's key is its name."""
    import collections

    found, seen = [], set()
    queue = collections.deque((layer.name, layer) for layer in model._layers)
    while queue:
        key, layer = queue.popleft()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append((key, layer))
        queue.extendleft((f"{key}/{child.name}", child) for child in layer._layers)
    return found


def own_variables(layer):
    """The variables `layer` created itself, not those of the layers inside it (Keras's
    `layer.weights` includes both)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


@contextlib.contextmanager
def unlocked_tracking(layer):
    """A context in which variables can be added to the built `layer` (Keras locks a layer's
    state after `build`; `enable_lora` and `quantize` unlock it the same way)."""
    layer._tracker.unlock()
    try:
        yield
    finally:
        layer._tracker.lock()


def drop_seed_generator(layer, generator):
    """Removes `generator` (a `keras.random.SeedGenerator` or None) from `layer`'s state."""
    if generator is not None:
        layer._seed_generators[:] = [g for g in layer._seed_generators if g is not generator]


def refresh_call_signature(layer):
    """Re-reads `layer.call`'s arguments after its class changed: Keras reads them once, in
    `Layer.__init__`, to decide whether `training` is passed down."""
    import inspect

    layer._call_signature = inspect.signature(layer.call)
    layer.call_signature_parameters = list(layer._call_signature.parameters)
    layer._call_has_training_arg = "training" in layer.call_signature_parameters
    layer._call_has_mask_arg = "mask" in layer.call_signature_parameters
    layer._call_has_context_arg = {arg: arg in layer.call_signature_parameters
                                   for arg in layer._call_context_args}


def reset_compiled_functions(model):
    """Drops `model`'s traced train/test/predict functions, so that the next `fit` traces
    the layers as they are now (after a layer's class changed in place)."""
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


def causal_padding(conv):
    """The `ops.pad` widths that make a Keras `Conv1D` with `padding="causal"` causal (its own
    `_compute_causal_padding`)."""
    return conv._compute_causal_padding()


def input_channels(conv, input_shape):
    """The input channels of a Keras convolution for `input_shape`, by its `data_format`
    (its own `_get_input_channel`)."""
    return conv._get_input_channel(input_shape)


def read_by_other_layers(layer):
    """Whether another layer of a functional graph reads `layer`'s output (Keras's
    `_outbound_nodes`; False outside a graph, such as in a subclassed model)."""
    return bool(getattr(layer, "_outbound_nodes", None))


def producing_layer(tensor):
    """The layer whose call made the symbolic `tensor` of a functional graph."""
    return tensor._keras_history[0]


def optimizer_slot(optimizer, slots, variable):
    """`variable`'s entry of one of `optimizer`'s slot lists (`optimizer.momentums`, ...)."""
    return slots[optimizer._get_variable_index(variable)]


def adam_slots(optimizer, variable):
    """`(m, v)`: a Keras `Adam`'s first and second moments of `variable` (Adam keeps them in
    lists it does not expose)."""
    return (optimizer_slot(optimizer, optimizer._momentums, variable),
            optimizer_slot(optimizer, optimizer._velocities, variable))


def plain_tf_variable(variable):
    """The `tf.Variable` behind a Keras variable, or None if it is distributed or not a
    TensorFlow resource variable (fused TensorFlow kernels take its `handle`)."""
    import tensorflow as tf

    value = getattr(variable, "_value", variable)
    if (isinstance(value, tf.Variable) and hasattr(value, "handle")
            and not isinstance(value, tf.distribute.DistributedValues)):
        return value
    return None


def tflite_ops(interpreter):
    """The ops of a LiteRT `Interpreter` (`op_name`, `inputs`, `outputs`): its public API
    lists tensors only."""
    return interpreter._get_ops_details()


def build_input_shape(layer):
    """The input shape `layer` was built with (Keras records it in `build`), or None when it
    was built from several inputs or not at all."""
    shapes = list((getattr(layer, "_build_shapes_dict", None) or {}).values())
    return tuple(shapes[0]) if len(shapes) == 1 and shapes[0] is not None else None


def retrace_compiled_functions(model):
    """Makes `model`'s next steps trace the layers anew, from within `fit` (whose loop reads
    `model.train_function` after the callbacks' `on_train_begin`: it is rebuilt, not
    dropped); evaluation and prediction trace again on their next call."""
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    for name in ("test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


def sync_backend_state(model):
    """Lets a callback's `assign` reach the next training step on JAX: Keras's JAX `fit`
    keeps the model's state outside its variables during an epoch and reads it back only
    after `jax_state_sync` (keras-team/keras#19054). Nothing on other backends."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def load_keras_archive(path, prepare, custom_objects=None, compile=True, safe_mode=True):
    """`keras.saving.load_model(path)` with `prepare(model)` called between building the
    model from its config and loading its weights (and before compiling it, so that the
    optimizer is built over the prepared variables): Keras's own loader has no such step."""
    import json
    import os
    import tempfile
    import zipfile

    from keras.src.saving import saving_lib

    with tempfile.TemporaryDirectory() as directory:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(directory)
        with open(os.path.join(directory, "config.json")) as handle:
            config = json.load(handle)
        compile_config = config.get("compile_config") if compile else None
        model = saving_lib._model_from_config(json.dumps(config), custom_objects, False,
                                              safe_mode)
        prepare(model)
        if compile_config:
            model.compile_from_config(compile_config)
        weights = saving_lib.H5IOStore(os.path.join(directory, "model.weights.h5"), mode="r")
        assets_path = os.path.join(directory, "assets")
        assets = (saving_lib.DiskIOStore(assets_path, mode="r")
                  if os.path.isdir(assets_path) else None)
        failed, errors = set(), {}
        try:
            saving_lib._load_state(model, weights_store=weights, assets_store=assets,
                                   inner_path="", visited_saveables=set(),
                                   failed_saveables=failed, error_msgs=errors)
        finally:
            weights.close()
            if assets:
                assets.close()
        if failed:
            saving_lib._raise_loading_failure(errors)
    return model


def run_through_graph(model, inputs, operation_fn):
    """A functional `model`'s graph run on `inputs` (symbolic ones build a new graph), each
    node's operation replaced by `operation_fn(operation)` (what `keras.models.clone_model`
    does inside)."""
    return model._run_through_graph(inputs, operation_fn=operation_fn)


def keras_mask(tensor):
    """The padding mask Keras attached to `tensor` (an `Embedding(mask_zero=True)`'s), or None."""
    return getattr(tensor, "_keras_mask", None)
