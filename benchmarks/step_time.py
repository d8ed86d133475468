"""Step-time ratios: CS / IMP / ISS / ticket training steps against a plain Keras step.

Every model is trained with `fit` on the same `tf.data` pipeline of cached
batches (the way a search trains) after a warm-up; the repeats are interleaved
(plain, CS, ISS, IMP, plain, ...) so machine noise hits all variants alike, and
the median per-step time of each is reported as a ratio to the plain Keras
model in the same run.

    python3 -m benchmarks.step_time [--models=lenet300_100,conv6] [--batch_size=60] [--jit]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lottery import models, search  # noqa: E402
from keras_lottery.callbacks import set_temperature  # noqa: E402
from keras_lottery.config import SearchConfig  # noqa: E402
from keras_lottery.convert import strip  # noqa: E402

SHAPES = {"lenet300_100": (28, 28, 1), "conv6": (32, 32, 3), "conv2": (28, 28, 1),
          "resnet18": (32, 32, 3)}


def build_variants(model_name, input_shape):
    """Plain Keras model and the masked variants, all with the same architecture."""
    variants = {}
    masked = {
        "cs": dict(mask_rule="continuous", mask_init=0.01, mask_penalty=1e-6),
        "iss": dict(mask_rule="stochastic", mask_init=1.0, mask_penalty=1e-8),
        "imp / ticket": dict(mask_rule="fixed", mask_init=1.0),
    }
    for name, kwargs in masked.items():
        keras.utils.set_random_seed(0)
        variants[name] = models.build(model_name, input_shape, 10, **kwargs)
    # The plain model: the masked one stripped to keras.layers.Dense / Conv2D.
    variants = {"plain keras": strip(variants["imp / ticket"]), **variants}
    return variants


def compile_variant(model, jit):
    config = SearchConfig(optimizer="sgd", learning_rate=0.01, weight_decay=0.0, jit_compile=jit)
    return search.compile_model(model, config)


def time_steps(model, dataset, steps):
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return (time.perf_counter() - started) / steps


def run(model_name, batch_size, jit, repeats, steps):
    rng = np.random.RandomState(0)
    shape = SHAPES[model_name]
    x = rng.randn(8 * batch_size, *shape).astype("float32")
    y = rng.randint(0, 10, 8 * batch_size)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat()
    batches = batches.prefetch(tf.data.AUTOTUNE)
    variants = build_variants(model_name, shape)
    for model in variants.values():
        compile_variant(model, jit)
        set_temperature(model, 50.0)
        time_steps(model, batches, 20)  # warm-up: tracing and first allocations
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, model in variants.items():
            times[name].append(time_steps(model, batches, steps))
    base = statistics.median(times["plain keras"])
    return {name: {"median_ms": 1e3 * statistics.median(t), "ratio": statistics.median(t) / base}
            for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lenet300_100,conv6")
    parser.add_argument("--batch_size", type=int, default=60)
    parser.add_argument("--jit", action="store_true", help="jit_compile the train steps (XLA)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", default="", help="also write the table to this JSON file")
    args = parser.parse_args(argv)
    table = {}
    print(f"command: python3 -m benchmarks.step_time {' '.join(sys.argv[1:])}")
    for model_name in args.models.split(","):
        result = run(model_name, args.batch_size, args.jit, args.repeats, args.steps)
        table[model_name] = result
        for name, row in result.items():
            print(f"{model_name:14s} {name:14s} {row['median_ms']:8.2f} ms/step  "
                  f"ratio {row['ratio']:.3f}  (batch {args.batch_size}, jit {args.jit})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(table, handle, indent=2)
    return table


if __name__ == "__main__":
    main()
