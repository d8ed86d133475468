"""How much of a `fit` step's update reaches `w` and `s` on 2 replicas, relative to 1 device.

Two CSDense layers (lambda = 1e-3), one `fit` step of plain SGD on the same
batch of 60, under `OneDeviceStrategy` and under `MirroredStrategy` over 2
logical CPU devices. For each variable it prints the projection ratio
`<u2, u1> / <u1, u1>` of the mirrored update `u2` on the single-device update
`u1` (1.000 when the penalty enters the gradient once) and the largest
difference. `--batch_norm` puts a synchronized BatchNormalization (a
cross-replica merge inside the forward pass) in front.

    python3 -m benchmarks.replica_gradients [--mask_penalty=1e-3] [--batch_norm]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import layers  # noqa: E402


def one_step_update(strategy, mask_penalty, batch_norm):
    """Variable path -> (update of one `fit` step on the fixed batch)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20)).astype("float32")
    y = rng.integers(0, 3, 60)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        front = [keras.layers.BatchNormalization(synchronized=True)] if batch_norm else []
        model = keras.Sequential([keras.Input((20,))] + front + [
            layers.CSDense(16, activation="relu", mask_init=0.1, mask_penalty=mask_penalty),
            layers.CSDense(3, mask_init=0.1, mask_penalty=mask_penalty)])
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.fit(x, y, batch_size=60, epochs=1, verbose=0, shuffle=False)
    return [(v.path.split("/", 1)[1], v.numpy() - b)
            for v, b in zip(model.trainable_variables, before)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mask_penalty", type=float, default=1e-3)
    parser.add_argument("--batch_norm", action="store_true")
    args = parser.parse_args()
    single = one_step_update(tf.distribute.OneDeviceStrategy("/cpu:0"), args.mask_penalty,
                             args.batch_norm)
    mirrored = one_step_update(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
                               args.mask_penalty, args.batch_norm)
    print(f"{'variable':32s} {'mirrored/single':>16s} {'max |difference|':>17s}")
    for (name, one), (_, two) in zip(single, mirrored):
        norm = float(np.sum(one * one))
        ratio = float(np.sum(one * two)) / norm if norm else float("nan")
        print(f"{name:32s} {ratio:16.4f} {float(np.max(np.abs(one - two))):17.3g}")


if __name__ == "__main__":
    main()
