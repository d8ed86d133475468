"""`tf.distribute` strategies for a search: `--distribute=auto|none|mirrored|multi_worker`.

- `none`: the default strategy (one device).
- `mirrored`: `tf.distribute.MirroredStrategy` over every visible GPU (or the
  logical CPU devices a test sets up).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; every worker
  runs the same command with its own `TF_CONFIG` (see docs/guide.md); the
  chief writes the run, the others only their resume state.
- `auto`: `mirrored` when more than one GPU is visible, else `none`.

Every variable (`w`, `s`, `beta`, optimizer slots) is created under the
strategy's scope, so callbacks that assign `beta` or reset `s` between rounds
update every replica at once.
"""

import json
import os

import tensorflow as tf

from keras_lottery import compat

STRATEGIES = ("auto", "none", "mirrored", "multi_worker")


def make_strategy(name):
    """Returns the `tf.distribute.Strategy` for `name` (one of `STRATEGIES`)."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown distribute {name!r}; expected one of {list(STRATEGIES)}.")
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
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        compat.build_from_local_batch(model)
    return model


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
