"""Memory: extra bytes per masked weight that CS (and ISS, IMP) training costs over plain Keras.

Two numbers per variant, against a plain Keras model of the same architecture
(a wide MLP, so that the weights dominate):
- persistent: bytes of every model and optimizer variable (`s`, its
  optimizer slots, `beta`, `lambda`), counted exactly;
- peak: the peak resident memory of a fresh process that builds the model
  and trains a few steps, which adds the step's transients (the mask, the
  effective kernel, the gradient of `s`). Each variant runs in its own
  process; the difference to the plain process is divided by the number of
  masked weights.

    python3 -m benchmarks.memory [--width=2048] [--depth=4] [--optimizer=sgd|adam]
"""

import argparse
import json
import os
import resource
import subprocess
import sys

from benchmarks.step_time import MASKED_VARIANTS

VARIANTS = {"plain keras": None, **MASKED_VARIANTS}


def build(variant, width, depth):
    import keras

    from keras_lottery.layers import CSDense

    kwargs = VARIANTS[variant]
    layers = [keras.Input((width,))]
    for index in range(depth):
        units = width if index < depth - 1 else 10
        if kwargs is None:
            layers.append(keras.layers.Dense(units, name=f"fc{index}"))
        else:
            layers.append(CSDense(units, name=f"fc{index}", **kwargs))
    return keras.Sequential(layers)


def measure(variant, width, depth, optimizer, steps=3, batch_size=60):
    """Runs in a child process: builds, trains `steps` steps, returns its numbers."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from keras_lottery.layers import masked_layers
    from keras_lottery.search import model_setup
    from keras_lottery.search.config import SearchConfig

    model = build(variant, width, depth)
    config = SearchConfig(optimizer=optimizer, learning_rate=0.01, momentum=0.9,
                          weight_decay=0.0)
    model_setup.compile_model(model, config)
    rng = np.random.RandomState(0)
    x = rng.randn(batch_size * steps, width).astype("float32")
    y = rng.randint(0, 10, batch_size * steps)
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    persistent = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                     for v in model.variables + model.optimizer.variables)
    masked = sum(int(np.prod(layer.mask_logits.shape)) for layer in masked_layers(model))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"persistent_bytes": persistent, "peak_rss_bytes": peak, "masked_weights": masked}


def run(width, depth, optimizer):
    rows = {}
    for variant in VARIANTS:
        command = [sys.executable, "-m", "benchmarks.memory", "--child", variant,
                   f"--width={width}", f"--depth={depth}", f"--optimizer={optimizer}"]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows[variant] = json.loads(output.strip().splitlines()[-1])
    plain = rows["plain keras"]
    weights = max(row["masked_weights"] for row in rows.values())
    for row in rows.values():
        row["extra_persistent_per_weight"] = (
            (row["persistent_bytes"] - plain["persistent_bytes"]) / weights)
        row["extra_peak_per_weight"] = (row["peak_rss_bytes"] - plain["peak_rss_bytes"]) / weights
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.width, args.depth, args.optimizer)))
        return None
    print(f"command: python3 -m benchmarks.memory {' '.join(sys.argv[1:])}")
    rows = run(args.width, args.depth, args.optimizer)
    weights = max(row["masked_weights"] for row in rows.values())
    print(f"{weights:,} masked weights, optimizer {args.optimizer} (momentum 0.9 for sgd)")
    for name, row in rows.items():
        print(f"{name:14s} persistent {row['persistent_bytes'] / 2**20:8.1f} MiB "
              f"(+{row['extra_persistent_per_weight']:5.2f} B/weight)   "
              f"peak RSS {row['peak_rss_bytes'] / 2**20:8.1f} MiB "
              f"(+{row['extra_peak_per_weight']:5.2f} B/weight)", flush=True)
    return rows


if __name__ == "__main__":
    main()
