"""A keras-tuner sweep of ticket searches, reporting the Pareto front of (remaining, accuracy).

    python -m apps.sweep --flagfile=apps/flags/quickstart.cfg --max_trials=8 --sweep_dir=runs/sweep

Takes every flag of `apps.search` for the settings the sweep does not vary.
CS varies s0 (--mask_init), lambda (--mask_penalty) and beta_T; IMP the prune
fraction and the rounds; ISS s0, lambda and the learning rate of s. `--sweep`
varies only the knobs it names, in the ranges it gives; e.g. the paper's Conv-6
CS sweep of s0 at a fixed lambda: `--sweep=mask_init=-0.03:0.03 --mask_penalty=1e-10`. Running the
same command again continues the sweep. For several machines, start one chief
and several workers with keras-tuner's variables (docs/guide.md).
"""

import os
import sys

from absl import app, flags

from keras_lottery import apps, sweep
from keras_lottery.apps import search as search_app  # defines the search flags
from keras_lottery.data import DataError
from keras_lottery.search.config import ConfigError

flags.DEFINE_integer("max_trials", 8, "Number of trials (each a whole ticket search).")
flags.DEFINE_string("sweep_dir", "runs/sweep", "keras-tuner project directory of the sweep.")
flags.DEFINE_enum("tuner", "random", ["random", "bayesian"], "keras-tuner oracle.")
flags.DEFINE_boolean("overwrite_sweep", False, "Start the sweep again from no trials.")
flags.DEFINE_string("sweep", "", "Knobs to vary, comma-separated: NAME (its default range), "
                    "NAME=LOW:HIGH[:log] or NAME=A|B|C; the others keep their flag's value. "
                    "Default: every knob of the method (CS: mask_init, mask_penalty, "
                    "final_temperature; IMP: prune_fraction, rounds; ISS: mask_init, "
                    "mask_penalty, mask_learning_rate). Any method also sweeps budgets: "
                    "target_macs=0.5|0.25|0.125 or target_parameters=0.25|0.1 (one ticket per "
                    "budget; the report draws accuracy against each one's speedup).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = search_app.config_from_flags()
        summary = sweep.run_sweep(config, FLAGS.sweep_dir, FLAGS.max_trials, FLAGS.tuner,
                                  FLAGS.seed, FLAGS.overwrite_sweep, FLAGS.sweep)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary is None:
        print("worker finished; the chief writes the sweep's summary into "
              f"{os.path.join(FLAGS.sweep_dir, 'sweep.json')}")
        return 0
    failed = [t for t in summary["trials"] if t["status"] != "COMPLETED"]
    print(f"{len(summary['trials'])} trials, {len(failed)} failed; Pareto front on validation "
          "(remaining, validation accuracy, test accuracy):")
    for point in summary["pareto_front"]:
        print(f"  {100 * point['remaining']:6.2f}%  {100 * point['validation_accuracy']:.2f}%  "
              f"{100 * point['ticket_accuracy']:.2f}%  ({point['trial']}, round {point['round']})")
    print(f"summary: {os.path.join(FLAGS.sweep_dir, 'sweep.json')}")
    return 0


def run_main():
    """Console-script entry point (`keras-lottery-sweep`)."""
    apps.run(main, __doc__, flags_parser=search_app.parse_flags)


if __name__ == "__main__":
    run_main()
