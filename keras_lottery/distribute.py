"""`tf.distribute` strategies for a search: `--distribute=auto|none|mirrored|multi_worker`.

- `none`: the default strategy (one device).
- `mirrored`: `tf.distribute.MirroredStrategy` over every visible GPU (or the
  logical CPU devices a test sets up).
- `multi_worker`: `tf.distribute.MultiWorkerMirroredStrategy`; every worker
  runs the same command with its own `TF_CONFIG` (see docs/guide.md).
- `auto`: `mirrored` when more than one GPU is visible, else `none`.

Every variable (`w`, `s`, `beta`, optimizer slots) is created under the
strategy's scope, so callbacks that assign `beta` or reset `s` between rounds
update every replica at once.
"""

import json
import os

import tensorflow as tf

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
    return tf.distribute.MultiWorkerMirroredStrategy()


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
    """The chief writes into `output_dir`; other workers into `output_dir/worker_<id>`."""
    if is_chief(strategy):
        return output_dir
    resolver = strategy.cluster_resolver
    return os.path.join(output_dir, f"{resolver.task_type}_{resolver.task_id}")
