"""Inference ratios: a stripped ticket against the same network built from plain Keras layers.

A ticket is a CS model whose masks keep `--remaining` of the weights (drawn at
random: sparsity pattern does not change dense-kernel speed). `convert.strip`
folds `w * b(s)` into plain `Dense` / `Conv2D` kernels; the benchmark times
a compiled forward pass (`training=False`) of the stripped ticket, of the
ticket still in its masked layers (fixed rule), and of a plain Keras model
with the same architecture, interleaved, and reports median ratios to the
plain model measured in the same run.

    python3 -m benchmarks.inference [--models=lenet300_100,conv6] [--batch_sizes=60]
"""

import argparse
import functools
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import step_time  # noqa: E402
from benchmarks.step_time import SHAPES  # noqa: E402
from keras_lottery import models  # noqa: E402
from keras_lottery.layers import masked_layers  # noqa: E402
from keras_lottery.tickets import strip  # noqa: E402


def ticket_variants(model_name, remaining):
    """Plain Keras model, the ticket in its masked layers, and the stripped ticket."""
    shape = SHAPES[model_name]
    keras.utils.set_random_seed(0)
    ticket = models.build(model_name, shape, 10, mask_rule="fixed", mask_init=1.0)
    rng = np.random.RandomState(0)
    for layer in masked_layers(ticket):
        layer.set_ticket_mask(rng.rand(*layer.mask_logits.shape) < remaining)
    plain = models.build(model_name, shape, 10,
                         unmasked=[layer.name for layer in masked_layers(ticket)])
    return {"plain keras": plain, "ticket (masked layers)": ticket,
            "ticket (stripped)": strip(ticket)}


def time_calls(function, x, calls):
    started = time.perf_counter()
    for _ in range(calls):
        result = function(x)
    np.asarray(result)  # wait for the last call
    return (time.perf_counter() - started) / calls


def forward(model, jit):
    """`model`'s compiled inference through a closure: passed as a default argument, the
    model made `tf.function` ~15x slower at batch 1."""
    return tf.function(lambda x: model(x, training=False), jit_compile=jit)


def run(model_name, batch_size, remaining, repeats, calls, jit):
    x = tf.constant(np.random.RandomState(1).randn(batch_size, *SHAPES[model_name]),
                    tf.float32)
    functions = {}
    for name, model in ticket_variants(model_name, remaining).items():
        functions[name] = forward(model, jit)
        time_calls(functions[name], x, 10)  # warm-up: tracing
    timers = {name: functools.partial(time_calls, function, x, calls)
              for name, function in functions.items()}
    return step_time.ratios(step_time.interleaved(timers, repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lenet300_100,conv6")
    parser.add_argument("--batch_sizes", default="60")
    parser.add_argument("--remaining", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--jit", action="store_true", help="jit_compile the forward pass")
    args = parser.parse_args(argv)
    print(f"command: python3 -m benchmarks.inference {' '.join(sys.argv[1:])}")
    table = {}
    for model_name in args.models.split(","):
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            result = run(model_name, batch_size, args.remaining, args.repeats, args.calls,
                         args.jit)
            table[f"{model_name} batch={batch_size}"] = result
            for name, row in result.items():
                print(f"{model_name:14s} batch {batch_size:5d} {name:24s} "
                      f"{step_time.ratio_columns(row, unit='ms', digits=3)}", flush=True)
    return table


if __name__ == "__main__":
    main()
