"""What a search adds around the CS training step, with and without `steps_per_execution`.

`apps.search` trains with a progress bar and per-batch callbacks
(`StopOnNonFinite`, `MaskSummaries`, and `TargetRemaining` with a target);
each costs Python work per call into the compiled step. This times CS on
LeNet-300-100 (as `benchmarks.step_time` builds it) with
- bare: `fit` with only `TemperatureCallback`, no progress bar;
- search: the search's callbacks and a progress bar (written to /dev/null);
- search, k steps per execution: the same, compiled with `steps_per_execution=k`;
interleaved, and prints each as a ratio to the bare step.

    python3 -m benchmarks.search_overhead [--steps_per_execution=10] [--batch_size=60]
"""

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_lottery import callbacks as cb  # noqa: E402
from keras_lottery import search  # noqa: E402
from keras_lottery.callbacks import set_temperature  # noqa: E402
from keras_lottery.config import SearchConfig  # noqa: E402

from benchmarks import step_time  # noqa: E402

STEPS = 200


def search_callbacks(log_dir):
    return [cb.TemperatureCallback(200.0), cb.StopOnNonFinite(), cb.MaskSummaries(log_dir),
            cb.TargetRemaining(0.1, start=0.5)]


def time_fit(model, batches, verbose, make_callbacks):
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        started = time.perf_counter()
        model.fit(batches, epochs=1, steps_per_epoch=STEPS, verbose=verbose,
                  callbacks=make_callbacks())
    return (time.perf_counter() - started) / STEPS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps_per_execution", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"command: python3 -m benchmarks.search_overhead {' '.join(sys.argv[1:])}")
    shape = step_time.SHAPES["lenet300_100"]
    batches = step_time.synthetic_batches(shape, args.batch_size)
    log_dir = tempfile.mkdtemp()
    models = {}
    for name, k in (("one step", 1), ("k steps", args.steps_per_execution)):
        model = step_time.build_variants("lenet300_100", shape)["cs"]
        search.compile_model(model, SearchConfig(learning_rate=0.01, weight_decay=0.0,
                                                 steps_per_execution=k))
        set_temperature(model, 50.0)
        models[name] = model
    variants = {
        "bare": (models["one step"], 0, lambda: [cb.TemperatureCallback(200.0)]),
        "search": (models["one step"], 1, lambda: search_callbacks(log_dir)),
        f"search, {args.steps_per_execution} steps per execution":
            (models["k steps"], 1, lambda: search_callbacks(log_dir)),
    }
    for model, verbose, make_callbacks in variants.values():
        time_fit(model, batches, verbose, make_callbacks)  # warm-up: tracing
    timers = {name: functools.partial(time_fit, model, batches, verbose, make_callbacks)
              for name, (model, verbose, make_callbacks) in variants.items()}
    for name, row in step_time.ratios(step_time.interleaved(timers, args.repeats),
                                      base="bare").items():
        print(f"{name:36s} median {row['median_ms']:6.2f} ms/step  ratio {row['ratio']:.3f}   "
              f"best {row['best_ms']:6.2f} ms/step  ratio {row['best_ratio']:.3f}", flush=True)


if __name__ == "__main__":
    main()
