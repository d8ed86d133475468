"""The control every structured ticket needs (Liu et al., "Rethinking the Value of Network
Pruning", ICLR 2019): the same small architecture, trained from scratch with the search's
recipe, as long as a ticket trains from initialization.

Given the hidden widths a unit ticket kept (e.g. LeNet 784-35-24-10), builds that dense network
from plain Keras layers; or, given a shrunk ticket (`--architecture=.../shrunk.keras`, any
model `shrink` wrote: a Conv-4 with the filters its ticket kept), the same architecture with
fresh weights (`keras.models.clone_model`, each layer's own initializer, reseeded per seed);
or, with `--flag_model`, the flagfile's own `--model` without masks (with
`--width_multiplier=0.141`, the thinner MobileNetV2 that is the width-multiplier control).
Compiles it as a search does (`search.model_setup.compile_model`: the flagfile's optimizer,
weight decay, learning rate) and trains it on the flagfile's data for
`ticket_epoch + ticket_epochs` epochs, once per seed; prints test accuracy, mean and spread
(and the test loss in bits per character for a language model's data set, e.g. `kjv_chars`).

    python3 -m benchmarks.scratch_control --flagfile=apps/flags/cs_unit_lenet300_fashion.cfg \\
        --widths=35,24 --seeds=0,1,2
    python3 -m benchmarks.scratch_control --flagfile=apps/flags/cs_unit_conv4_fashion.cfg \\
        --architecture=runs/unit_conv4/seed_0/ticket/round_2/shrunk.keras --seeds=0,1,2
    python3 -m benchmarks.scratch_control --flagfile=apps/flags/cs_unit_gpt_kjv.cfg \\
        --architecture=runs/cs_unit_gpt_kjv/ticket/round_1/shrunk.keras --seeds=0,1,2
    python3 -m benchmarks.scratch_control --flagfile=apps/flags/cs_unit_mobilenet_fashion.cfg \\
        --flag_model --width_multiplier=0.141 --seeds=0,1,2
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import data, models, tickets  # noqa: E402
from keras_lottery.apps import search as search_app  # noqa: E402
from keras_lottery.report.replicates import mean_and_spread  # noqa: E402
from keras_lottery.search import bits, model_setup  # noqa: E402
from keras_lottery.tickets.deployment import load_deployed  # noqa: E402


def dense_network(input_shape, widths, num_classes):
    """A plain fully connected network: Flatten, ReLU layers of `widths`, a logits layer."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for index, width in enumerate(widths, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"fc{index}")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="output")(x))


def flag_model(config, splits):
    """`config.model` as the search builds it, plain (its masks stripped), fresh weights."""
    masked = models.build(config.model, splits.input_shape, splits.num_classes,
                          vocabulary_size=splits.vocabulary_size,
                          options={"width_multiplier": config.width_multiplier})
    return keras.models.clone_model(tickets.strip(masked, warn_undecided=False))


def fresh_copy(path):
    """The architecture saved at `path` with newly initialized weights."""
    return keras.models.clone_model(load_deployed(path))


def train(config, build, seed):
    """`(test accuracy, test bits per character or None)` of `build(splits)` trained from
    scratch with `config`'s recipe and `seed` (the seed also draws the initial weights)."""
    keras.utils.set_random_seed(seed)
    splits = data.load(config.dataset, config.data_dir or None,
                       validation_examples=config.validation_examples,
                       train_examples=config.train_examples, seed=seed,
                       scaling=config.input_scaling, image_size=config.image_size)
    steps = data.steps_per_epoch(splits, config.batch_size)
    model = model_setup.compile_model(build(splits), config, steps)
    model.fit(data.epoch_stream(splits, config.batch_size, seed=seed, stream=0),
              steps_per_epoch=steps, epochs=config.ticket_epoch + config.ticket_epochs,
              verbose=0, shuffle=False)  # the stream is shuffled by seed already
    _, test = data.evaluation_pipelines(splits, config.batch_size)
    results = model.evaluate(test, verbose=0, return_dict=True)
    in_bits = bits.bits_record(config, "test", results["loss"]).get("test_bits_per_char")
    return float(results["accuracy"]), in_bits


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--widths", help="hidden widths of a fully connected net, e.g. 35,24")
    which.add_argument("--architecture",
                       help="a saved ticket (shrunk.keras, or ticket.keras: shrunk here) to "
                            "retrain afresh")
    which.add_argument("--flag_model", action="store_true",
                       help="the flagfile's --model itself, without masks")
    parser.add_argument("--seeds", default="0,1,2")
    args, flags = parser.parse_known_args(argv[1:])
    search_app.FLAGS([argv[0]] + flags)
    config = search_app.config_from_flags()
    if args.architecture:
        if not os.path.isfile(args.architecture):
            sys.exit(f"error: --architecture={args.architecture!r}: no such file")
        described = args.architecture

        def build(splits):
            return fresh_copy(args.architecture)
    elif args.flag_model:
        described = config.model + (f" alpha {config.width_multiplier:g}"
                                    if config.model == "mobilenet_v2" else "")

        def build(splits):
            return flag_model(config, splits)
    else:
        widths = [int(w) for w in args.widths.split(",")]
        described = f"{config.model} widths {widths}"

        def build(splits):
            return dense_network(splits.input_shape, widths, splits.num_classes)
    print(f"command: python3 -m benchmarks.scratch_control {' '.join(argv[1:])}", flush=True)
    accuracies, losses = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        accuracy, in_bits = train(config, build, seed)
        accuracies.append(accuracy)
        losses += [] if in_bits is None else [in_bits]
        print(f"seed {seed}: {described} from scratch, "
              f"{config.ticket_epoch + config.ticket_epochs} epochs: test accuracy "
              f"{accuracy:.4f}{bits.bits_text(in_bits)}", flush=True)
    print(f"mean {_mean_spread(100 * np.array(accuracies), 2)} over {len(accuracies)} seeds"
          + (f"; {_mean_spread(losses, 3)} bits/char" if losses else ""))


def _mean_spread(values, digits):
    mean, spread = mean_and_spread(values)
    return f"{mean:.{digits}f} +- {spread or 0.0:.{digits}f}"


if __name__ == "__main__":
    main(sys.argv)
