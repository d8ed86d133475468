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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from benchmarks import step_time  # noqa: E402
from keras_lottery import callbacks as cb  # noqa: E402
from keras_lottery import models  # noqa: E402
from keras_lottery.callbacks import set_temperature  # noqa: E402
from keras_lottery.search import model_setup  # noqa: E402
from keras_lottery.search.config import SearchConfig  # noqa: E402

STEPS = 200


def search_callbacks(log_dir):
    return [cb.TemperatureCallback(200.0), cb.StopOnNonFinite(), cb.MaskSummaries(log_dir),
            cb.TargetRemaining(0.1, start=0.5)]


def time_fit(model, batches, verbose, make_callbacks):
    """`step_time.time_steps` with fresh callbacks and the progress bar sent to /dev/null."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        return step_time.time_steps(model, batches, STEPS, make_callbacks(), verbose)


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
    compiled = {}
    for name, k in (("one step", 1), ("k steps", args.steps_per_execution)):
        keras.utils.set_random_seed(0)
        model = models.build("lenet300_100", shape, 10, **step_time.MASKED_VARIANTS["cs"])
        model_setup.compile_model(model, SearchConfig(learning_rate=0.01, weight_decay=0.0,
                                                 steps_per_execution=k))
        set_temperature(model, 50.0)
        compiled[name] = model
    variants = {
        "bare": (compiled["one step"], 0, lambda: [cb.TemperatureCallback(200.0)]),
        "search": (compiled["one step"], 1, lambda: search_callbacks(log_dir)),
        f"search, {args.steps_per_execution} steps per execution":
            (compiled["k steps"], 1, lambda: search_callbacks(log_dir)),
    }
    for model, verbose, make_callbacks in variants.values():
        time_fit(model, batches, verbose, make_callbacks)  # warm-up: tracing
    timers = {name: functools.partial(time_fit, model, batches, verbose, make_callbacks)
              for name, (model, verbose, make_callbacks) in variants.items()}
    for name, row in step_time.ratios(step_time.interleaved(timers, args.repeats),
                                      base="bare").items():
        print(f"{name:36s} {step_time.ratio_columns(row)}", flush=True)


if __name__ == "__main__":
    main()
