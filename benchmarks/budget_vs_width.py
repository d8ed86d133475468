"""A MobileNetV2 ticket at a MAC budget against the thinner MobileNetV2 of equal MACs, one process.

The control that matters for mobile networks is the width multiplier `alpha`: a unit ticket
that deploys at a fraction `F` of the dense network's multiply-accumulates must be at least as
fast as `keras.applications.MobileNetV2(alpha=a)` whose MACs are `F` of the dense one's (`a`
found by bisection on the counted MACs; MobileNetV2 keeps at least 8 channels per layer and
its last convolution's 1280, so on small inputs no width reaches a small `F`: the table then
compares with the thinnest network, marked). For every budget the benchmark builds the dense
network, a ticket cut onto the budget (`tickets.budgets.cut_learned` on random depthwise-channel
logits, or a search's real ticket with `--shrunk`: its `shrunk.keras`, or its `ticket.keras`,
which is shrunk here) and the width network, then times
them interleaved (median of `--repeats`): Keras (closure-compiled `tf.function`) at
`--keras_batch` and TFLite (`ai-edge-litert`, one thread) at batch 1. It prints each one's
MACs and its speedup over the dense network, measured in the same run. With
`--unit_multiples=1,8` the random tickets are cut twice, keeping any count of channels per
layer and a multiple of 8 (`--unit_multiple`), and all are timed side by side.

    python3 -m benchmarks.budget_vs_width [--budgets=0.5,0.25,0.125] [--image_size=32]
        [--alpha=0.35] [--repeats=15] [--shrunk=0.25:PATH,...] [--unit_multiples=1,8]
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lottery as kl  # noqa: E402
from keras_lottery.tickets.budgets import cut_learned  # noqa: E402
from keras_lottery.tickets.deployment import (  # noqa: E402
    keras_runner,
    load_deployed,
    median_latencies,
)
from keras_lottery.tickets.export import size_report  # noqa: E402


def mobilenet(alpha, size, classes=10):
    return keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha,
                                          weights=None, classes=classes,
                                          classifier_activation=None)


def macs(model):
    return size_report(model)["dense_macs_per_example"]


def equal_mac_alpha(fraction, alpha, size):
    """The width multiplier whose MobileNetV2 runs `fraction` of alpha's MACs (bisection)."""
    target = fraction * macs(mobilenet(alpha, size))
    low, high = 0.01, alpha
    for _ in range(12):  # alpha to within 1e-4
        middle = 0.5 * (low + high)
        low, high = (middle, high) if macs(mobilenet(middle, size)) < target else (low, middle)
    return 0.5 * (low + high)


def random_budget_ticket(alpha, size, fraction, seed=0, unit_multiple=1):
    """A shrunk unit ticket of MobileNetV2(alpha) cut onto `fraction` of its MACs from random
    logits (the depthwise channels are the groups), each layer keeping a multiple of
    `unit_multiple` channels."""
    keras.utils.set_random_seed(seed)
    model = kl.sparsify(mobilenet(alpha, size), mask_granularity="unit")
    rng = np.random.default_rng(seed)
    for layer in kl.layers.masked_layers(model):
        layer.mask_logits.assign(rng.normal(size=layer.mask_logits.shape).astype("float32"))
    cut_learned(kl.DeployedCost(model, "macs"), fraction, unit_multiple=unit_multiple)
    return kl.shrink(model)


def _tflite(model, directory, name):
    path = os.path.join(directory, f"{name}.tflite")
    kl.tickets.export_tflite(model, path)
    return kl.tickets.TFLiteModel(path, threads=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="0.5,0.25,0.125")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--keras_batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--shrunk", default="",
                        help="F:PATH,... real tickets (shrunk.keras or ticket.keras)")
    parser.add_argument("--unit_multiples", default="1",
                        help="random tickets: one per multiple of channels kept per layer")
    args = parser.parse_args(argv)
    multiples = [int(m) for m in args.unit_multiples.split(",")]
    shrunk = dict(item.split(":", 1) for item in args.shrunk.split(",") if item)
    budgets = [float(b) for b in args.budgets.split(",")] if not shrunk else sorted(
        {float(f) for f in shrunk}, reverse=True)
    size = args.image_size
    dense = mobilenet(args.alpha, size)
    rng = np.random.default_rng(0)
    inputs = {"keras": rng.random((args.keras_batch, size, size, 3), dtype=np.float32),
              "tflite": rng.random((1, size, size, 3), dtype=np.float32)}
    print(f"MobileNetV2 alpha {args.alpha} on {size}x{size}x3: {macs(dense):,} MACs per example")
    print("| budget F | ticket | ticket MACs / dense | width alpha | width MACs / dense | Keras b"
          f"{args.keras_batch}: ticket / width speedup | TFLite b1: ticket / width speedup |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        dense_tflite = _tflite(dense, directory, "dense")
        for fraction in budgets:
            if shrunk:
                path = shrunk.get(str(fraction), shrunk.get(f"{fraction:g}"))
                tickets = {"search's": load_deployed(path)}
            else:
                tickets = {f"random, multiple {m}": random_budget_ticket(
                    args.alpha, size, fraction, unit_multiple=m) for m in multiples}
            alpha = equal_mac_alpha(fraction, args.alpha, size)
            width = mobilenet(alpha, size)
            models = {"dense": dense, **tickets, "width": width}
            runners = {name: keras_runner(model) for name, model in models.items()}
            lite = {name: dense_tflite if name == "dense" else
                    _tflite(model, directory, f"model_{index}")
                    for index, (name, model) in enumerate(models.items())}
            keras_times = median_latencies(runners, {args.keras_batch: inputs["keras"]},
                                           args.repeats)
            lite_times = median_latencies(lite, {1: inputs["tflite"]}, args.repeats)
            k = {n: keras_times["dense"][args.keras_batch] / keras_times[n][args.keras_batch]
                 for n in models}
            t = {n: lite_times["dense"][1] / lite_times[n][1] for n in models}
            reached = macs(width) <= 1.05 * fraction * macs(dense)
            for name, ticket in tickets.items():
                print(f"| {fraction:g} | {name} | {macs(ticket) / macs(dense):.3f} | {alpha:.3f}"
                      f"{'' if reached else ' (none reaches F: the thinnest)'} | "
                      f"{macs(width) / macs(dense):.3f} | {k[name]:.2f}x / {k['width']:.2f}x | "
                      f"{t[name]:.2f}x / {t['width']:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
