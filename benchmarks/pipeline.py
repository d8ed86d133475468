"""Input pipeline: examples/s the search's `tf.data` pipeline delivers against what a step eats.

Delivery: iterating `data.epoch_stream` (the pipeline `apps.search` trains
from: a stateless shuffle per epoch, one gather per batch, prefetch) over the
real data set, with and without augmentation, after a warm-up. Consumption:
examples/s of a CS training step (`fit` on cached batches, beta annealed
every step) of the same model and batch size. The ratio delivery /
consumption must stay well above 1 for the pipeline never to be the
bottleneck. The two are measured one after the other in the same process.

    python3 -m benchmarks.pipeline [--dataset=fashion_mnist] [--model=lenet300_100]
                                   [--batch_sizes=60,128]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import step_time  # noqa: E402
from keras_lottery import data  # noqa: E402


def delivery_rate(splits, batch_size, augment, batches, repeats):
    """Median examples/s of `epoch_stream` over `repeats` runs of `batches` batches."""
    stream = iter(data.epoch_stream(splits, batch_size, seed=0, augment=augment))
    for _ in range(20):  # warm-up: tracing, prefetch buffers
        next(stream)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        examples = 0
        for _ in range(batches):
            x, _ = next(stream)
            examples += int(x.shape[0])
        rates.append(examples / (time.perf_counter() - started))
    return statistics.median(rates)


def consumption_rate(model_name, input_shape, batch_size, repeats, steps):
    """Median examples/s of a CS training step of `model_name` at `batch_size`."""
    import keras

    from keras_lottery import models
    from keras_lottery.callbacks import TemperatureCallback

    keras.utils.set_random_seed(0)
    model = models.build(model_name, input_shape, 10, **step_time.MASKED_VARIANTS["cs"])
    step_time.compile_variant(model, jit=False)
    batches = step_time.synthetic_batches(input_shape, batch_size)
    callbacks = [TemperatureCallback(200.0)]
    step_time.time_steps(model, batches, 20, callbacks)
    times = [step_time.time_steps(model, batches, steps, callbacks) for _ in range(repeats)]
    return batch_size / statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--model", default="lenet300_100")
    parser.add_argument("--batch_sizes", default="60,128")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"command: python3 -m benchmarks.pipeline {' '.join(sys.argv[1:])}")
    splits = data.load(args.dataset, args.data_dir)
    input_shape = splits.x_train.shape[1:]
    rows = {}
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        eaten = consumption_rate(args.model, input_shape, batch_size, args.repeats, 100)
        for augment in (False, True):
            delivered = delivery_rate(splits, batch_size, augment, args.batches, args.repeats)
            rows[(batch_size, augment)] = (delivered, eaten)
            print(f"batch {batch_size:4d} augment={'on ' if augment else 'off'} "
                  f"pipeline {delivered:10,.0f} examples/s   CS step ({args.model}) "
                  f"{eaten:9,.0f} examples/s   ratio {delivered / eaten:6.1f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
