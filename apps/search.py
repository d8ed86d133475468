"""Ticket search from the command line.

    python -m apps.search --flagfile=apps/flags/quickstart.cfg [--flag=value ...]

Every field of `keras_lottery.SearchConfig` is a flag; `--helpfull` lists them.
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from keras_lottery.config import SearchConfig  # noqa: E402

HELP = {
    "method": "Search method: cs (Continuous Sparsification), imp (Iterative Magnitude "
              "Pruning) or iss (Iterative Stochastic Sparsification).",
    "supermask": "Freeze the weights at w_0 and learn only the mask (cs or iss); the ticket "
                 "is evaluated without retraining.",
    "unmasked_layers": "Comma-separated layer names left without a mask (never pruned).",
    "mask_optimizer": "Optimizer of the mask logits s: same (as w), sgd or adam.",
    "mask_learning_rate": "Learning rate of s (0: the learning rate of w).",
    "mask_momentum": "SGD momentum of s with --mask_optimizer=sgd.",
    "prune_fraction": "IMP: share of the surviving weights pruned per round.",
    "prune_scope": "IMP: layerwise (each layer its own rate) or global (one threshold).",
    "prune_fraction_conv": "IMP layerwise rate of convolutions (0: --prune_fraction).",
    "prune_fraction_dense": "IMP layerwise rate of dense layers (0: --prune_fraction).",
    "prune_fraction_output": "IMP layerwise rate of the last masked layer (0: the dense rate).",
    "model": "Model name from keras_lottery.models.",
    "dataset": "Data set name.",
    "data_dir": "Directory with the data set's local files (IDX for Fashion-MNIST).",
    "train_examples": "Use only this many training images (0: all).",
    "validation_examples": "Images held out from the training set for validation.",
    "rounds": "Number of search rounds.",
    "epochs": "Training epochs per round.",
    "batch_size": "Batch size.",
    "optimizer": "Optimizer of w and s: sgd or adam.",
    "learning_rate": "Learning rate.",
    "momentum": "SGD momentum.",
    "nesterov": "Use Nesterov momentum with SGD.",
    "weight_decay": "Decoupled weight decay on the weights (never on s).",
    "mask_init": "s0: initial value of the mask logits s.",
    "mask_penalty": "lambda: weight of the L1 penalty ||sigmoid(beta*s)||_1.",
    "target_remaining": "The last round's ticket keeps exactly this fraction of the weights "
                        "(e.g. 0.05; round r of R aims at target**(r/R)); 0 turns it off.",
    "target_start": "Fraction of each round trained as plain CS before --target_remaining "
                    "starts re-centring the logits s.",
    "initial_temperature": "beta_0: temperature at the start of each round.",
    "final_temperature": "beta_T: temperature at the end of each round.",
    "temperature_per_epoch": "Anneal beta once per epoch instead of every step.",
    "rewind_epoch": "k: rewind w <- w_k between rounds; -1 for no rewinding.",
    "ticket_epoch": "Tickets are retrained from the weights after this many epochs (0: w_0).",
    "ticket_epochs": "Epochs to retrain each round's ticket (0 skips retraining).",
    "dense_baseline": "Also train the dense network from w_0 for ticket_epoch + ticket_epochs epochs.",
    "seed": "Random seed.",
    "augment": "Augment training images: random crop after 4-pixel padding, horizontal flip.",
    "lr_decay_epochs": "Comma-separated epochs (within a round) at which the learning rate of w "
                       "is multiplied by --lr_decay_factor.",
    "lr_decay_factor": "Learning-rate decay factor.",
    "distribute": "auto (mirrored when several GPUs are visible), none, mirrored, multi_worker.",
    "mixed_precision": "none, mixed_float16 or mixed_bfloat16 (s and the mask math stay float32).",
    "dry_run": "Build model, data and callbacks, run 2 steps of each phase, write nothing, exit.",
    "deterministic": "Make CPU runs bit-for-bit repeatable (TensorFlow op determinism).",
    "overwrite": "Replace a run with other settings found in --output_dir.",
    "jit_compile": "Compile train steps with XLA.",
    "steps_per_execution": "Training steps per call into the compiled step, at most (the "
                           "largest divisor of an epoch's steps not above it). More saves "
                           "per-step Python work (progress bar, callbacks); the results stay "
                           "the same.",
    "output_dir": "Run directory: results.json, tickets/, tensorboard/.",
    "verbose": "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.",
}


def define_flags():
    for field in dataclasses.fields(SearchConfig):
        default = field.default
        help_text = HELP[field.name]
        if isinstance(default, tuple):
            flags.DEFINE_list(field.name, [str(v) for v in default], help_text)
        elif isinstance(default, bool):
            flags.DEFINE_boolean(field.name, default, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text)
        else:
            flags.DEFINE_string(field.name, default, help_text)


define_flags()
FLAGS = flags.FLAGS


def config_from_flags(flag_values=FLAGS):
    """The `SearchConfig` the parsed flags describe; raises ConfigError on a malformed list."""
    from keras_lottery.config import ConfigError

    settings = {name: flag_values[name].value for name in SearchConfig.field_names()}
    settings["unmasked_layers"] = tuple(settings["unmasked_layers"])
    try:
        settings["lr_decay_epochs"] = tuple(int(e) for e in settings["lr_decay_epochs"])
    except ValueError:
        raise ConfigError(
            f"--lr_decay_epochs={','.join(settings['lr_decay_epochs'])} is invalid: expected "
            "comma-separated integers.") from None
    return SearchConfig(**settings)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from keras_lottery import search  # imported here: TensorFlow is slow to import
    from keras_lottery.config import ConfigError
    from keras_lottery.data import DataError

    from keras_lottery.callbacks import TrainingDiverged

    try:
        config = config_from_flags()
        searcher = search.Search(config)
        searcher.run()
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except OSError as error:
        print(f"error: cannot write to --output_dir={FLAGS.output_dir!r}: "
              f"{error.strerror or error}; finished rounds, if any, are in its results.json.",
              file=sys.stderr)
        return 4
    if config.dry_run:
        return 0
    if searcher.chief:
        print(f"results: {os.path.join(config.output_dir, search.RESULTS_FILE)}")
    else:
        print(f"worker finished; the chief writes the results into {config.output_dir}")
    return 0


def run_main():
    """Console-script entry point (`keras-lottery-search`)."""
    app.run(main)


if __name__ == "__main__":
    run_main()
