"""Masks a built model in place under `keras.distribution.DataParallel` over 2 JAX host
devices and trains it, and masks another outside the scope: prints `REFUSED <error>`, then `OK <devices of s> <fewest devices of a trainable variable>` (run by test_backends.py
with KERAS_BACKEND=jax; the devices must exist before JAX starts)."""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lottery  # noqa: E402
from keras_lottery.layers import masked_layers  # noqa: E402


def main():
    distribution = keras.distribution.DataParallel(devices=jax.devices())
    with distribution.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(4)])
        keras_lottery.sparsify(model, mask_init=0.5, mask_penalty=1e-4, in_place=True)
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        x = np.random.RandomState(0).rand(32, 8).astype("float32")
        y = np.arange(32) % 4
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    try:  # a model of the distribution masked outside its scope: one clear line
        with distribution.scope():
            outside = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="spread")])
        keras_lottery.sparsify(outside, in_place=True)
    except ValueError as error:
        print("REFUSED", str(error).splitlines()[0])
    layer = masked_layers(model)[0]
    print("OK", len(layer.mask_logits.value.sharding.device_set),
          min(len(v.value.sharding.device_set) for v in model.trainable_variables))


if __name__ == "__main__":
    main()
