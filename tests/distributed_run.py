"""Runs one tiny search on 2 logical CPU devices, mirrored or not; prints its results as JSON.

Used by test_distribute.py in a fresh process (logical devices must be set
before TensorFlow initialises). Under `KERAS_BACKEND=jax` the host CPU is split into
2 XLA devices instead (`--xla_force_host_platform_device_count`).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=2")
else:
    import tensorflow as tf  # noqa: E402

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402

from keras_lottery import search  # noqa: E402
from keras_lottery.search import distribute  # noqa: E402
from keras_lottery.search.config import SearchConfig  # noqa: E402


def main():
    data_dir, out, strategy, method = sys.argv[1:5]
    overrides = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    config = SearchConfig(
        method=method, data_dir=data_dir, validation_examples=200, rounds=2, epochs=2,
        batch_size=100, ticket_epoch=1, ticket_epochs=1, mask_init=-0.01 if method == "cs" else 1.0,
        mask_penalty=1e-6, dense_baseline=False, output_dir=out, verbose=0, distribute=strategy,
        optimizer="sgd", learning_rate=0.05, weight_decay=1e-4, deployment=False, **overrides)
    results = search.run(config)
    strategy_object = distribute.make_strategy(strategy)
    results["replicas"] = strategy_object.num_replicas_in_sync
    results["backend"] = keras.backend.backend()
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
