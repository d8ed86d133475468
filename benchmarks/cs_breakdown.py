"""Where CS's extra step time goes: each piece of the mask work timed on its own.

For the masked kernels of a model (LeNet-300-100 by default) this times, in
compiled loops and interleaved with a plain Keras training step of the same
network and batch:
- mask forward: `w * sigmoid(beta*s)` and `lambda * sum(m)`, on the native
  kernel (`keras_lottery.native`) and on TensorFlow's ops;
- mask backward: the gradients of `w` and `s` through it, given `dL/d(w*m)`;
- optimizer on s: the SGD-with-Nesterov update of every `s` (`FusedSGD`,
  and Keras's `SGD` for comparison);
- beta assigned from Python per step (what `TemperatureCallback` avoids by
  advancing `beta` inside the step);
and prints each as a fraction of the plain step.

    python3 -m benchmarks.cs_breakdown [--model=lenet300_100] [--batch_size=60]
"""

import argparse
import functools
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import step_time  # noqa: E402
from keras_lottery import models  # noqa: E402
from keras_lottery.layers import continuous as cs  # noqa: E402
from keras_lottery.layers import (
    masked_layers,  # noqa: E402
    native,  # noqa: E402
)
from keras_lottery.optimizers import FusedSGD  # noqa: E402

REPEAT = 20  # calls inside one compiled function, so dispatch does not dominate


def mask_pieces(layers, rule, label):
    """The mask's forward, and forward + backward, of every layer under `rule`."""
    upstream = [tf.ones(layer.unmasked_kernel.shape) * 1e-3 for layer in layers]

    def forward_once():  # what a training call of each layer computes for its kernel
        return [rule.masked_kernel(layer, layer.unmasked_kernel.value, training=True)
                for layer in layers]

    @tf.function
    def forward():
        total = 0.0
        for _ in range(REPEAT):
            total += sum(tf.reduce_sum(kernel[0][:1]) for kernel in forward_once())
        return total

    @tf.function
    def forward_backward():
        total = 0.0
        for _ in range(REPEAT):
            with tf.GradientTape() as tape:
                outputs = forward_once()
                loss = sum(tf.reduce_sum(kernel * g) + penalty
                           for (kernel, penalty), g in zip(outputs, upstream))
            gradients = tape.gradient(loss, [v for layer in layers
                                             for v in (layer.unmasked_kernel, layer.mask_logits)])
            total += sum(tf.reduce_sum(g[:1]) for g in gradients)
        return total

    return {f"mask forward ({label})": (forward, REPEAT),
            f"mask forward+backward ({label})": (forward_backward, REPEAT)}


def pieces(model):
    layers = masked_layers(model)

    def optimizer_step(optimizer_class):
        logits = [layer.mask_logits for layer in layers]
        optimizer = optimizer_class(0.01, momentum=0.9, nesterov=True)
        optimizer.build(logits)
        gradients = [tf.zeros(s.shape) for s in logits]

        @tf.function
        def step():
            for _ in range(REPEAT):
                optimizer.apply(gradients, logits)
        return step

    def eager_assign():  # what a per-step Python update of beta would cost
        for layer in layers:
            layer.temperature.assign(50.0)

    kernel = "native" if native.load() is not None else "native unavailable: tf ops"
    return {**mask_pieces(layers, cs.ContinuousMask(), kernel),
            **mask_pieces(layers, step_time.TFOpsContinuousMask(), "tf ops"),
            "optimizer on s (FusedSGD)": (optimizer_step(FusedSGD), REPEAT),
            "optimizer on s (keras SGD)": (optimizer_step(keras.optimizers.SGD), REPEAT),
            "beta assign from Python": (eager_assign, 1)}


def _time_piece(function, count, calls=10):
    """Seconds per piece: `calls` calls of `function`, each doing the piece `count` times."""
    started = time.perf_counter()
    for _ in range(calls):
        result = function()
    if result is not None:
        np.asarray(result)  # wait for the last call
    return (time.perf_counter() - started) / (calls * count)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lenet300_100")
    parser.add_argument("--batch_size", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"command: python3 -m benchmarks.cs_breakdown {' '.join(sys.argv[1:])}")
    shape = step_time.SHAPES[args.model]
    keras.utils.set_random_seed(0)
    cs = models.build(args.model, shape, 10, **step_time.MASKED_VARIANTS["cs"])
    plain = models.build(args.model, shape, 10,
                         unmasked=[layer.name for layer in masked_layers(cs)])
    step_time.compile_variant(plain, jit=False, plain_keras=True)
    batches = step_time.synthetic_batches(shape, args.batch_size)
    step_time.time_steps(plain, batches, 20, [])
    timers = {"plain keras step": functools.partial(step_time.time_steps, plain, batches, 100, [])}
    for name, (function, count) in pieces(cs).items():
        function()  # warm-up: tracing
        timers[name] = functools.partial(_time_piece, function, count)
    times = step_time.interleaved(timers, args.repeats)
    base = statistics.median(times["plain keras step"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36s} {1e3 * median:7.3f} ms   {median / base:6.3f} of the plain step",
              flush=True)


if __name__ == "__main__":
    main()
