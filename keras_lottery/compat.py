"""The Keras internals keras_lottery relies on, in one place (pinned by tests/test_compat.py).

Only what the public API cannot do lives here:

- `ReplicaLocalLosses`: a layer's `add_loss` terms kept per replica. Keras
  stores a layer's added losses in one list per layer (`Layer._losses`) that
  the model's call clears at entry (`Layer._clear_losses`) and that
  `Model.losses` reads back (`Layer._get_own_losses`). Under
  `tf.distribute.MirroredStrategy` each replica traces the step in its own
  thread, and the threads take turns at every cross-replica merge; when a
  merge falls inside the forward pass (a synchronized BatchNormalization, a
  variable updated with aggregation), the next replica clears and refills the
  shared lists, and each replica's loss picks up the other replicas' terms or
  loses its own. The mask penalty `lambda * ||m||_1` then enters the gradient
  a wrong number of times. Masked layers keep their penalty in a list per
  thread instead, so each replica's loss holds its own penalty exactly once.
"""

import contextlib
import threading

from keras.src.backend.common.stateless_scope import in_stateless_scope


class ReplicaLocalLosses:
    """Mixin for a Keras layer: `add_replica_loss(x)` adds `x` to this replica's losses only.

    Keras's `Model.losses` collects it with the layer's other losses and the
    trainer scales it by `1 / replicas` like any `add_loss` term, so after the
    cross-replica sum of gradients it counts once per step.
    """

    def _replica_losses(self):
        # A dict keyed by thread (not threading.local) keeps the layer deep-copyable.
        store = self.__dict__.setdefault("_losses_by_thread", {})
        return store.setdefault(threading.get_ident(), [])

    def add_replica_loss(self, loss):
        """Adds the scalar tensor `loss` to the losses of the replica being traced."""
        if in_stateless_scope():
            # Keras's stateless calls collect losses in their own (thread-local) scope.
            self.add_loss(loss)
        else:
            self._replica_losses().append(loss)

    def _get_own_losses(self):
        return super()._get_own_losses() + list(self._replica_losses())

    def _clear_losses(self):
        super()._clear_losses()
        store = self.__dict__.get("_losses_by_thread", {})
        store.pop(threading.get_ident(), None)
        if store:  # another replica's thread: drop it once that thread has finished
            alive = {thread.ident for thread in threading.enumerate()}
            for ident in [i for i in store if i not in alive]:
                del store[ident]


#: Keras 3's multi-step loop (`steps_per_execution > 1`) runs the step inside a
#: `tf.cond`; under MirroredStrategy the optimizer's cross-replica merge in that
#: branch fails at run time ("You must feed a value for placeholder tensor
#: 'while/cond/Placeholder_1'", keras-team/keras#19246, open). Pinned by
#: tests/test_compat.py: when Keras fixes it that test fails and this goes.
MULTI_STEP_BREAKS_WITH_REPLICAS = True


def steps_per_execution_for(strategy, wanted):
    """`wanted`, or 1 where Keras cannot run several steps per call (see above)."""
    if MULTI_STEP_BREAKS_WITH_REPLICAS and strategy.num_replicas_in_sync > 1:
        return 1
    return wanted


def build_from_local_batch(model):
    """Lets `model.fit` / `evaluate` start under MultiWorkerMirroredStrategy.

    Before the first step Keras builds the model's metrics and optimizer from
    one batch, which it gets by averaging a distributed batch over replicas
    (`strategy.reduce("MEAN", (x, y, ...))`). MultiWorkerMirroredStrategy
    cannot reduce a tuple eagerly and fails with "Attempt to convert a value
    (PerReplica...) to a Tensor". Only the batch's shapes matter there, so this
    gives Keras this worker's own first slice instead (no communication).
    Pinned by tests/test_multi_worker.py, which fails without it.
    """
    import tensorflow as tf
    from keras import tree

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return model.distribute_strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if model._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local, next(batches))
                break
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    # An instance attribute, so only this model changes (not keras.Model).
    object.__setattr__(model, "_maybe_symbolic_build", maybe_symbolic_build)
    return model


def _scalar_safe_reduce_per_replica(reduce_per_replica):
    import tensorflow as tf

    def reduce(values, strategy, reduction):
        if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and reduction in ("auto", "mean")):
            # Keras averages each log over replicas along axis 0, which a scalar lacks;
            # the logs are metric results, already the same on every replica.
            from keras import tree

            def mean(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    return strategy.reduce("MEAN", value, axis=None)
                return value

            return tree.map_structure(mean, values)
        return reduce_per_replica(values, strategy, reduction)

    reduce.keras_lottery_patched = True
    return reduce


def patch_multi_worker_fit():
    """Lets Keras's `fit` and `evaluate` finish steps under MultiWorkerMirroredStrategy.

    Keras reduces each step's logs with `strategy.reduce("MEAN", v, axis=0)`
    when several workers train, which fails on scalar logs ("Invalid reduction
    dimension 0 for input with 0 dimensions"). This replaces the module
    function Keras's TensorFlow trainer calls with one that reduces over
    replicas only (`axis=None`); other strategies go through Keras's own.
    Called once by `keras_lottery.search.distribute` for `--distribute=multi_worker`;
    pinned by tests/test_multi_worker.py.
    """
    from keras.src.backend.tensorflow import trainer

    if not getattr(trainer.reduce_per_replica, "keras_lottery_patched", False):
        trainer.reduce_per_replica = _scalar_safe_reduce_per_replica(trainer.reduce_per_replica)


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
