"""Keras under `tf.distribute`: what keras_lottery patches or works around (pinned by
tests/test_compat.py, tests/test_replica_steps.py and tests/test_multi_worker.py)."""

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
