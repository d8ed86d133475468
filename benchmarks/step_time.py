"""Step-time ratios: CS / ISS / IMP / ticket training steps against a plain Keras step.

Every model is trained with `fit` on the same `tf.data` pipeline of cached
batches (the way a search trains) after a warm-up. The CS model trains with
its per-step `TemperatureCallback`, as in a search. The repeats are
interleaved (plain, CS, ISS, IMP, plain, ...) so machine noise hits all
variants alike, and the median (and the best, least disturbed) per-step time
of each is reported as a ratio to
the plain Keras model (`keras.layers.Dense` / `Conv2D`, same architecture,
`keras.optimizers.SGD`) measured in the same run. CS runs on the native kernel
(`keras_lottery.native`) where it is available; `cs (tf ops)` is CS on TensorFlow's
ops with the hand-written gradient and `cs (autodiff)` CS as autodiff builds it,
for comparison.

`--backend=tensorflow,jax` measures the same table on each Keras backend, every one in its own
process (a process has one backend) and each against its own plain Keras step, and prints the
ratios side by side. On JAX every step is jitted (`jit=on`; Keras's JAX `jit_compile=False`
runs op by op) and the native kernel, a TensorFlow op, is not used.

    python3 -m benchmarks.step_time [--models=lenet300_100,conv6] [--batch_size=60]
                                    [--optimizer=sgd|adam] [--jit=both|on|off] [--json=FILE]
                                    [--backend=tensorflow,jax]
"""

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lottery import layers, models  # noqa: E402
from keras_lottery.callbacks import TemperatureCallback, set_temperature  # noqa: E402
from keras_lottery.layers import continuous as cs  # noqa: E402
from keras_lottery.layers import native  # noqa: E402
from keras_lottery.search import model_setup  # noqa: E402
from keras_lottery.search.config import SearchConfig  # noqa: E402
from keras_lottery.tickets import strip  # noqa: E402

SHAPES = {"lenet300_100": (28, 28, 1), "conv2": (28, 28, 1), "conv4": (32, 32, 3),
          "conv6": (32, 32, 3), "resnet18": (32, 32, 3), "vgg16": (32, 32, 3)}


class AutodiffContinuousMask(cs.ContinuousMask):
    """CS as autodiff sees it: `sigmoid(beta*s)`, `w*m` and `sum(m)` as separate ops."""

    name = "continuous_autodiff"

    def masked_kernel(self, layer, kernel, training=False):
        return layers.MaskRule.masked_kernel(self, layer, kernel, training)


class TFOpsContinuousMask(cs.ContinuousMask):
    """CS on TensorFlow's ops with the hand-written gradient, without the native kernel."""

    name = "continuous_tf_ops"
    native_kernel = False


MASKED_VARIANTS = {
    "cs": dict(mask_rule="continuous", mask_init=0.01, mask_penalty=1e-6),
    "cs (tf ops)": dict(mask_rule=TFOpsContinuousMask(), mask_init=0.01, mask_penalty=1e-6),
    "cs (autodiff)": dict(mask_rule=AutodiffContinuousMask(), mask_init=0.01,
                          mask_penalty=1e-6),
    # CS without its per-step TemperatureCallback: the mask's own cost (beta held at 50)
    "cs (fixed beta)": dict(mask_rule="continuous", mask_init=0.01, mask_penalty=1e-6),
    "iss": dict(mask_rule="stochastic", mask_init=1.0, mask_penalty=1e-8),
    "imp / ticket": dict(mask_rule="fixed", mask_init=1.0),
}


def build_variants(model_name, input_shape, names=None):
    """The plain Keras model and the masked variants (those in `names`, or all), all with the
    same architecture."""
    variants = {}
    for name, kwargs in MASKED_VARIANTS.items():
        if names and name not in names and name != "imp / ticket":
            continue
        if name == "cs (tf ops)" and keras.backend.backend() != "tensorflow":
            continue  # elsewhere "cs" is already on the backend's ops
        keras.utils.set_random_seed(0)
        variants[name] = models.build(model_name, input_shape, 10, **kwargs)
    # The plain model: the fixed-mask one stripped to keras.layers.Dense / Conv2D.
    # "plain keras" trains with keras.optimizers.SGD: what a user has without
    # keras_lottery. "plain, our sgd" is the same network on keras_lottery's
    # optimizer (FusedSGD): the ratio to it isolates what the masks cost.
    return {"plain keras": strip(variants["imp / ticket"]),
            "plain, our sgd": strip(variants["imp / ticket"]), **variants}


def compile_variant(model, jit, plain_keras=False, optimizer="sgd"):
    learning_rate = 0.01 if optimizer == "sgd" else 3e-4
    config = SearchConfig(optimizer=optimizer, learning_rate=learning_rate, momentum=0.9,
                          nesterov=True, weight_decay=0.0, jit_compile=jit)
    if not plain_keras:
        return model_setup.compile_model(model, config)
    model_setup.compile_model(model, config)  # the same loss and metrics as a search
    plain_optimizer = (keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)
                       if optimizer == "sgd" else keras.optimizers.Adam(learning_rate))
    model.compile(optimizer=plain_optimizer,
                  loss=model.loss, metrics=[
                      keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                      keras.metrics.SparseCategoricalCrossentropy(from_logits=True,
                                                                  name="task_loss")],
                  jit_compile=jit)
    return model


def time_steps(model, dataset, steps, callbacks, verbose=0):
    """Seconds per training step of one `fit` epoch of `steps` steps."""
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=verbose, callbacks=callbacks)
    return (time.perf_counter() - started) / steps


def synthetic_batches(shape, batch_size):
    rng = np.random.RandomState(0)
    x = rng.randn(8 * batch_size, *shape).astype("float32")
    y = rng.randint(0, 10, 8 * batch_size)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat()
    return batches.prefetch(tf.data.AUTOTUNE)


def interleaved(timers, repeats):
    """Calls every timer (a function returning seconds) `repeats` times, in turn, so
    machine noise hits all of them alike; returns `{name: [seconds, ...]}`."""
    times = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            times[name].append(timer())
    return times


def ratio_columns(row, unit="ms/step", digits=2):
    """One `ratios` entry as text: the median and best times and their ratios."""
    return (f"median {row['median_ms']:8.{digits}f} {unit}  ratio {row['ratio']:.3f}   "
            f"best {row['best_ms']:8.{digits}f} {unit}  ratio {row['best_ratio']:.3f}")


def ratios(times, base="plain keras"):
    """Median and best (least disturbed) time of each entry, and their ratios to `base`."""
    median, best = statistics.median(times[base]), min(times[base])
    return {name: {"median_ms": 1e3 * statistics.median(t), "ratio": statistics.median(t) / median,
                   "best_ms": 1e3 * min(t), "best_ratio": min(t) / best}
            for name, t in times.items()}


def run(model_name, batch_size, jit, repeats, steps, optimizer="sgd", names=None):
    """Median ms per step and ratio to plain Keras for every variant of one model."""
    shape = SHAPES[model_name]
    batches = synthetic_batches(shape, batch_size)
    variants = build_variants(model_name, shape, names)
    callbacks = {}
    for name, model in variants.items():
        compile_variant(model, jit, plain_keras=name == "plain keras", optimizer=optimizer)
        set_temperature(model, 50.0)
        # CS anneals beta every step in a search; the callback's cost is part of its step.
        callbacks[name] = ([TemperatureCallback(200.0)] if name.startswith("cs")
                           and name != "cs (fixed beta)" else [])
        time_steps(model, batches, 20, callbacks[name])  # warm-up: tracing, first allocations
    timers = {name: functools.partial(time_steps, model, batches, steps, callbacks[name])
              for name, model in variants.items()}
    return ratios(interleaved(timers, repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lenet300_100,conv6")
    parser.add_argument("--batch_size", type=int, default=60)
    parser.add_argument("--jit", choices=("off", "on", "both"), default="both",
                        help="jit_compile the train steps (XLA)")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                        help="sgd (0.01, Nesterov 0.9) or adam (3e-4) for w and s, and for the "
                        "plain model Keras's own")
    parser.add_argument("--variants", default="",
                        help="comma-separated masked variants to time (default: all of "
                        f"{', '.join(MASKED_VARIANTS)}); the plain ones always run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", default="", help="also write the table to this JSON file")
    parser.add_argument("--backend", default=keras.backend.backend(),
                        help="comma-separated Keras backends (tensorflow, jax): each measured "
                        "in its own process, the ratios printed side by side")
    args = parser.parse_args(argv)
    backends = args.backend.split(",")
    if backends != [keras.backend.backend()]:
        return compare_backends(backends, argv if argv is not None else sys.argv[1:], args)
    jit_modes = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    if keras.backend.backend() == "jax":
        jit_modes = [True]
    print(f"command: python3 -m benchmarks.step_time {' '.join(sys.argv[1:])}")
    print(f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"tensorflow {tf.__version__}, keras {keras.__version__} "
          f"(backend {keras.backend.backend()})")
    print("native CS kernel: " + ("loaded" if native.load() else
                                  f"not available ({native.unavailable_reason()})"))
    table = {}
    for model_name in args.models.split(","):
        for jit in jit_modes:
            result = run(model_name, args.batch_size, jit, args.repeats, args.steps,
                         args.optimizer, [v for v in args.variants.split(",") if v])
            table[f"{model_name} jit={'on' if jit else 'off'}"] = result
            for name, row in result.items():
                print(f"{model_name:14s} jit={'on ' if jit else 'off'} {name:14s} "
                      f"{ratio_columns(row)}  (batch {args.batch_size})", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(table, handle, indent=2)
    return table


def compare_backends(backends, argv, args):
    """Runs this benchmark once per backend (a child process each, `KERAS_BACKEND` set) and
    prints every variant's median ratio to its backend's plain Keras step side by side."""
    unknown = [b for b in backends if b not in ("tensorflow", "jax")]
    if unknown:
        raise SystemExit(f"error: --backend={args.backend} is invalid: {unknown[0]!r} is not "
                         "one of tensorflow, jax.")
    tables = {}
    own = [a for a in argv if not a.startswith(("--backend", "--json"))]
    for backend in backends:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, "-m", "benchmarks.step_time", *own,
                       f"--backend={backend}", f"--json={out.name}"]
            print(f"== {backend}", flush=True)
            subprocess.run(command, check=True, env=dict(os.environ, KERAS_BACKEND=backend))
            with open(out.name) as handle:
                tables[backend] = json.load(handle)
    print(f"\nmedian step-time ratio to the plain Keras step of the same backend and XLA "
          f"setting (batch {args.batch_size}):")
    for model_name in args.models.split(","):
        columns = [(backend, key) for backend in backends for key in tables[backend]
                   if key.split(" ")[0] == model_name]
        print(f"{model_name:15s}" + "".join(f"{b + ' ' + k.split(' ')[1]:>21s}"
                                            for b, k in columns))
        for name in tables[columns[0][0]][columns[0][1]]:
            cells = [tables[b][k].get(name) for b, k in columns]
            print(f"  {name:13s}" + "".join(f"{c['ratio']:21.3f}" if c else f"{'-':>21s}"
                                           for c in cells))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(tables, handle, indent=2)
    return tables


if __name__ == "__main__":
    main()
