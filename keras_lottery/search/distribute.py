"""Where a search runs: `--distribute=auto|none|mirrored|multi_worker`.

On TensorFlow, `tf.distribute` strategies:
- `none`: the default strategy (one device).
- `mirrored`: `tf.distribute.MirroredStrategy` over every visible GPU (or the
  logical CPU devices a test sets up).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; every worker
  runs the same command with its own `TF_CONFIG` (see docs/guide.md); the
  chief writes the run, the others only their resume state.
- `auto`: `mirrored` when more than one GPU is visible, else `none`.

On JAX, `keras.distribution` (`JaxPlacement`):
- `none`: no distribution (JAX's default device).
- `mirrored`: `keras.distribution.DataParallel` over every local device: the
  variables replicated, each batch split along its first axis (the host CPU
  splits into N devices with `XLA_FLAGS=--xla_force_host_platform_device_count=N`).
- `auto`: `mirrored` when more than one accelerator is visible, else `none`.
- `multi_worker` is TensorFlow's and refused (`backend_problem`).

Every variable (`w`, `s`, `beta`, optimizer slots) is created under the
strategy's scope (on JAX, the whole search runs in the distribution's scope,
so the callbacks' variables are replicated too), so callbacks that assign
`beta` or reset `s` between rounds update every replica at once.
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

from keras_lottery import compat

STRATEGIES = ("auto", "none", "mirrored", "multi_worker")


class JaxPlacement:
    """The part of a `tf.distribute.Strategy` a search uses, for JAX: `scope()` (the
    `keras.distribution` scope, or nothing on one device), `num_replicas_in_sync` and
    `cluster_resolver` (None: one process).

    Keras's JAX trainer computes each step over the whole global batch as one program
    sharded over the devices, so the loss, the penalty `lambda * ||m||_1` and the gradients
    are those of one device (no per-replica scaling to undo)."""

    cluster_resolver = None

    def __init__(self, distribution=None):
        self.distribution = distribution
        self.num_replicas_in_sync = (
            len(distribution.device_mesh.devices.flat) if distribution is not None else 1)

    def scope(self):
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()


def backend_problem(name):
    """Why `--distribute=name` cannot run on the active Keras backend, or None."""
    if name == "multi_worker" and keras.backend.backend() != "tensorflow":
        return (f"it is TensorFlow's MultiWorkerMirroredStrategy, and KERAS_BACKEND="
                f"{keras.backend.backend()}; use --distribute=mirrored (keras.distribution."
                "DataParallel over this host's devices) or the tensorflow backend")
    return None


def _jax_placement(name):
    import jax

    refused = backend_problem(name)
    if refused:
        raise ValueError(f"--distribute={name} is invalid: {refused}.")
    if name == "auto":
        accelerators = [d for d in jax.devices() if d.platform != "cpu"]
        name = "mirrored" if len(accelerators) > 1 else "none"
    if name == "none" or len(jax.devices()) == 1:
        return JaxPlacement()
    return JaxPlacement(keras.distribution.DataParallel(devices=jax.devices()))


def make_strategy(name):
    """Returns the `tf.distribute.Strategy` for `name` (one of `STRATEGIES`), or on JAX the
    `JaxPlacement`."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown distribute {name!r}; expected one of {list(STRATEGIES)}.")
    if keras.backend.backend() == "jax":
        return _jax_placement(name)
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if "TF_CONFIG" not in os.environ:
        raise ValueError("--distribute=multi_worker needs TF_CONFIG to describe the cluster.")
    compat.patch_multi_worker_fit()
    return tf.distribute.MultiWorkerMirroredStrategy()


def prepare_model(model):
    """Makes `model.fit` / `evaluate` work under the strategy the model was built in
    (MultiWorkerMirroredStrategy needs `compat.build_from_local_batch`); returns `model`."""
    if isinstance(getattr(model, "distribute_strategy", None),
                  tf.distribute.MultiWorkerMirroredStrategy):
        compat.build_from_local_batch(model)
    return model


def running(strategy):
    """The context a whole search runs in: on JAX the distribution's scope (the variables
    callbacks create mid-run are placed like the model's), on TensorFlow nothing (each
    model and restore enters its strategy's scope itself)."""
    if isinstance(strategy, JaxPlacement):
        return strategy.scope()
    return contextlib.nullcontext()


def is_chief(strategy):
    """Whether this process writes the run's files (always true outside multi-worker runs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def worker_output_dir(strategy, output_dir):
    """Where this process keeps its files: the chief writes the run into `output_dir`;
    every other worker keeps only what it needs to resume (its `state/` and the list of
    finished rounds) in `output_dir/worker_state/<type>_<id>`, no results, tickets or logs."""
    if is_chief(strategy):
        return output_dir
    resolver = strategy.cluster_resolver
    return os.path.join(output_dir, "worker_state", f"{resolver.task_type}_{resolver.task_id}")
